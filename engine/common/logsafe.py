"""Keep secrets out of logs.

HTTP client libraries log full request URLs at DEBUG; facebook-sdk puts the access token
in the query string, so those loggers never go below INFO. A filter masks anything that
still looks like a token parameter or a 16-digit NIK in our own records.
"""

from __future__ import annotations

import logging
import re

_QUIET = ("urllib3", "httpx", "httpcore", "requests", "facebook")
_TOKEN_PARAM = re.compile(r"(?i)((?:access_|refresh_)?token=)[^&\s\"']+")
_NIK = re.compile(r"(?<!\d)(\d{4})\d{10}(\d{2})(?!\d)")


def _scrub(text: str) -> str:
    return _NIK.sub(r"\1**********\2", _TOKEN_PARAM.sub(r"\1***", text))


class RedactingFilter(logging.Filter):
    """Masks token query parameters and NIK-like numbers in a record's final message."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            return True
        scrubbed = _scrub(message)
        if scrubbed != message:
            record.msg, record.args = scrubbed, None
        return True


def install() -> None:
    """Idempotent: quiet the HTTP loggers and put the filter on the root handlers."""
    for name in _QUIET:
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET or logger.level < logging.INFO:
            logger.setLevel(logging.INFO)
    root = logging.getLogger()
    for handler in root.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
