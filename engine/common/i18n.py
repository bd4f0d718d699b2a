"""User-facing text from gettext catalogs: Bahasa Indonesia by default, English on request.

The texts live in ``.po`` files, not in Python, so a translator works on
``engine/locale/<lang>/LC_MESSAGES/umkm.po`` (and ``channels/locale/.../channels.po`` for the
channel package) without reading code. A message id is a stable key
(``t("import.summary", ok=3)``) and every text uses ``{name}`` placeholders.

``make install`` compiles the catalogs to ``.mo``; a ``.po`` newer than its ``.mo`` (or with no
``.mo`` yet, as in a fresh checkout) is read directly, so an edited catalog is never ignored.
A missing English text falls back to Indonesian; a missing key is a programming error.
Plugins may add their own texts with :func:`register`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cache
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po
from jinja2 import Environment

from channels.base import LOCALE_DIR as CHANNELS_LOCALE_DIR
from engine.config import get_settings

SUPPORTED = ("id", "en")
DEFAULT_LANG = "id"
LOCALE_DIR = Path(__file__).resolve().parents[1] / "locale"
DOMAINS: tuple[tuple[Path, str], ...] = ((LOCALE_DIR, "umkm"), (CHANNELS_LOCALE_DIR, "channels"))

_registered: dict[str, dict[str, str]] = {}
_lang: ContextVar[str | None] = ContextVar("umkm_lang", default=None)


def _read_catalog(directory: Path, domain: str, lang: str) -> Catalog | None:
    """The compiled ``.mo`` when it is current, else the ``.po`` source (or nothing)."""
    base = directory / lang / "LC_MESSAGES" / domain
    po, mo = base.with_suffix(".po"), base.with_suffix(".mo")
    if mo.is_file() and (not po.is_file() or mo.stat().st_mtime >= po.stat().st_mtime):
        with mo.open("rb") as handle:
            return read_mo(handle)
    if po.is_file():
        with po.open("rb") as handle:
            return read_po(handle, locale=lang, domain=domain)
    return None


@cache
def catalog(lang: str) -> dict[str, str]:
    """Every translated text of ``lang``, keyed by message id (empty translations left out)."""
    texts: dict[str, str] = {}
    for directory, domain in DOMAINS:
        found = _read_catalog(directory, domain, lang)
        if found is None:
            continue
        for message in found:
            if isinstance(message.id, str) and message.id and isinstance(message.string, str) \
                    and message.string:
                texts[message.id] = message.string
    return texts


def register(messages: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    """Texts of a third-party plugin, in the shape ``{key: {"id": ..., "en": ...}}``."""
    for key, texts in messages.items():
        if "id" not in texts:
            raise ValueError(f"message {key!r} has no Indonesian text")
        _registered[key] = texts
    return messages


def has_message(key: str) -> bool:
    return key in _registered or key in catalog(DEFAULT_LANG)


def set_lang(lang: str | None) -> None:
    if lang is not None and lang not in SUPPORTED:
        raise ValueError(f"unsupported language {lang!r}; choose one of {SUPPORTED}")
    _lang.set(lang)


def get_lang() -> str:
    lang = _lang.get()
    if lang:
        return lang
    configured = get_settings().lang
    return configured if configured in SUPPORTED else DEFAULT_LANG


def text_of(key: str, lang: str) -> str:
    """The unformatted text of ``key`` in ``lang``, falling back to Indonesian."""
    plugin = _registered.get(key)
    if plugin is not None:
        return plugin.get(lang) or plugin["id"]
    found = catalog(lang).get(key) or catalog(DEFAULT_LANG).get(key)
    if found is None:
        raise KeyError(key)
    return found


def t(key: str, /, lang: str | None = None, **params: object) -> str:
    text = text_of(key, lang or get_lang())
    return text.format(**params) if params else text


@contextmanager
def using_lang(lang: str) -> Iterator[None]:
    """:func:`t` answers in ``lang`` inside the block (e.g. while one email compiles)."""
    token = _lang.set(lang if lang in SUPPORTED else DEFAULT_LANG)
    try:
        yield
    finally:
        _lang.reset(token)


def _jinja_gettext(key: str, /, **params: object) -> str:
    return text_of(key, get_lang()).format(**params) if params else text_of(key, get_lang())


def _jinja_ngettext(singular: str, plural: str, n: int, /, **params: object) -> str:
    return text_of(singular if n == 1 else plural, get_lang()).format(n=n, **params)


def install_jinja(env: Environment) -> None:
    """Jinja's i18n extension over these catalogs: ``{{ _("key", name=...) }}`` in a template.

    Old-style callables (``newstyle=False``) hand the keyword arguments to :func:`t`, which
    formats ``{name}`` placeholders; Jinja's new style would apply ``%`` to every text.
    """
    env.add_extension("jinja2.ext.i18n")
    env.install_gettext_callables(  # type: ignore[attr-defined]  # added by the extension
        gettext=_jinja_gettext, ngettext=_jinja_ngettext, newstyle=False)
