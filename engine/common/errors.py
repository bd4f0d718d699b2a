"""One root for every refusal the engine explains to a person: :class:`EngineError`.

Why one root: the engine says *what* went wrong (a catalog message id and its
parameters); the edges decide *how* to say it. The web app has one exception handler
that turns any :class:`EngineError` into a JSON body or an HTML page with the class's
HTTP status, and the CLI has one handler that prints it and exits, so no route or
command maps errors by hand. Modelled on :class:`channels.base.ConfigurationError`
(``code`` + ``params``); the text is looked up only when the error is shown, in the
language in force at that moment (``str(error)`` is that text).

Errors that some callers catch as ``ValueError`` or ``LookupError`` keep that base too.
The tree (HTTP status in brackets; classes defined elsewhere are named by module)::

    Exception
     └── EngineError [400]                      code, params
          ├── BadRequest [400]                  a request that cannot be answered as asked
          │    ├── engine.reporting.periods.ReportError (+ValueError)
          │    ├── engine.social.accounts.AccountError (+ValueError)
          │    └── engine.umkm.users.UserError
          ├── NotFound [404]                    nothing matches the reference
          │    ├── engine.delivery.control.RunNotFound (+LookupError)
          │    ├── engine.umkm.apikeys.UnknownBusiness (+LookupError)
          │    └── engine.umkm.businesses.NotFoundError
          ├── Conflict [409]                    refused by the current state of the data
          │    ├── engine.umkm.businesses.DuplicateError
          │    └── engine.umkm.businesses.NotEligibleError
          ├── InvalidInput [422]                a value that must be corrected first
          │    ├── engine.umkm.businesses.InvalidDataError
          │    └── engine.campaign.audience.AudienceRuleError (+ValueError)
          └── engine.umkm.businesses.BusinessError [400]
               (base of the business errors above; each also has its status class)

Channel errors are not engine errors: a delivery outcome is recorded on the message,
never shown as a refusal (``channels.base.ChannelError``).
"""

from __future__ import annotations

import errno
from typing import Any, ClassVar

from engine.common.i18n import t


class EngineError(Exception):
    """A refusal with a translatable explanation: ``code`` is a catalog message id.

    ``http_status`` is what the web edge answers; subclasses override it.
    """

    http_status: ClassVar[int] = 400

    def __init__(self, code: str, /, **params: Any) -> None:
        self.code = code
        self.params = params
        super().__init__(code)

    def __str__(self) -> str:
        return self.message()

    def message(self, lang: str | None = None) -> str:
        """The text in ``lang`` (default: the current language), parameters filled in."""
        return t(self.code, lang, **self.params)

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuilt from its state, not its constructor: subclasses take other arguments.
        return (_rebuild, (type(self), self.__dict__.copy()))


def _rebuild(cls: type[EngineError], state: dict[str, Any]) -> EngineError:
    error = cls.__new__(cls)
    Exception.__init__(error, state["code"])
    error.__dict__.update(state)
    return error


class BadRequest(EngineError):
    """A request that cannot be answered as asked (bad period, unknown choice)."""

    http_status = 400


class NotFound(EngineError):
    """Nothing matches the reference (or it belongs to someone else: same answer)."""

    http_status = 404


class Conflict(EngineError):
    """Refused because of the data's current state (a duplicate, a concurrent change)."""

    http_status = 409


class InvalidInput(EngineError):
    """A value that can never be accepted without being corrected."""

    http_status = 422


__all__ = ["BadRequest", "Conflict", "EngineError", "InvalidInput", "NotFound"]


_OS_REASONS = {errno.ENOENT: "oserror.not_found", errno.EACCES: "oserror.permission",
               errno.EPERM: "oserror.permission", errno.EISDIR: "oserror.is_directory",
               errno.ENOTDIR: "oserror.not_directory", errno.ENOSPC: "oserror.disk_full",
               errno.EROFS: "oserror.read_only"}


def os_reason(exc: OSError) -> str:
    """Why a file could not be read or written, in the user's language: the C library's
    ``strerror`` ("No such file or directory") is English on an Indonesian screen."""
    key = _OS_REASONS.get(exc.errno or 0)
    return t(key) if key else str(exc.strerror or exc)
