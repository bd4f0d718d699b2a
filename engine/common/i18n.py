"""User-facing text: Bahasa Indonesia by default, English on request (``--lang en``).

Each module registers its own messages next to the code that uses them::

    MESSAGES = register({"import.summary": {"id": "{ok} baris diterima",
                                            "en": "{ok} rows accepted"}})
    print(t("import.summary", ok=3))

A missing English text falls back to Indonesian; a missing key is a programming error.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

SUPPORTED = ("id", "en")
_catalog: dict[str, dict[str, str]] = {}
_lang: ContextVar[str | None] = ContextVar("umkm_lang", default=None)


def register(messages: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    for key, texts in messages.items():
        if "id" not in texts:
            raise ValueError(f"message {key!r} has no Indonesian text")
        _catalog[key] = texts
    return messages


def set_lang(lang: str | None) -> None:
    if lang is not None and lang not in SUPPORTED:
        raise ValueError(f"unsupported language {lang!r}; choose one of {SUPPORTED}")
    _lang.set(lang)


def get_lang() -> str:
    lang = _lang.get()
    if lang:
        return lang
    from engine.config import get_settings

    configured = get_settings().lang
    return configured if configured in SUPPORTED else "id"


def t(key: str, /, lang: str | None = None, **params: object) -> str:
    texts = _catalog[key]
    text = texts.get(lang or get_lang()) or texts["id"]
    return text.format(**params) if params else text


@contextmanager
def using_lang(lang: str) -> Iterator[None]:
    """:func:`t` answers in ``lang`` inside the block (e.g. while one email compiles)."""
    token = _lang.set(lang if lang in SUPPORTED else "id")
    try:
        yield
    finally:
        _lang.reset(token)
