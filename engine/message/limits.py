"""Hard resource limits for one campaign template render.

Why: subjects and templates are written by staff, and a one-liner such as
``{{ '{:>200000000}'.format(1) }}`` or ``{{ '%0200000000d' % 1 }}`` would otherwise
build hundreds of MB per recipient. Every guard here runs *before* the allocation
(the format spec's width is parsed, a repetition's size is computed), so the same
code rejects the campaign at ``umkm campaign validate`` (which test-renders it) and
refuses it again at send time, with a :class:`TemplateLimit` instead of a MemoryError.

The per-render budget (loop iterations, time, output bytes) lives in a context
variable set by :func:`render_budget` around each render.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from itertools import islice
from typing import Any

from jinja2.exceptions import SecurityError

from engine.common.i18n import t

MAX_OUTPUT_BYTES = 1_000_000
MAX_SEQUENCE = 100_000
MAX_FORMAT_WIDTH = 1_000
MAX_INDENT = 100
MAX_LIPSUM_PARAGRAPHS = 20
MAX_LIPSUM_WORDS = 200
MAX_RANGE = 10_000
MAX_LOOP_ITERATIONS = 100_000
MAX_RENDER_SECONDS = 2.0

_TIME_CHECK_EVERY = 256


class TemplateLimit(SecurityError):
    """A resource limit was hit; the message is already worded for the campaign author."""


def too_large(what: str, size: int, limit: int) -> TemplateLimit:
    """``what`` (a filter, method or operator name) would build ``size`` items/characters."""
    return TemplateLimit(t("tpl.limit_size", what=what, size=size, limit=limit))


def too_many(what: str, value: object, limit: object) -> TemplateLimit:
    """An argument (width, count, paragraphs ...) above its hard limit."""
    return TemplateLimit(t("tpl.limit_arg", what=what, value=value, limit=limit))


# --- sizes ------------------------------------------------------------------------------


def weight(obj: Any, budget: int = MAX_SEQUENCE) -> int:
    """Characters plus (nested) items of ``obj``, counting stops soon after ``budget``.

    Why nested: ``[[1] * 100000] * 100000`` has only 100000 items at the top but its
    text or ``sum`` is 10**10; shared references are counted each time they appear,
    as the result of ``join``/``str`` would repeat them.
    """
    if isinstance(obj, str):
        return len(obj)
    if isinstance(obj, list | tuple | dict):
        total = len(obj)
        for item in (obj.values() if isinstance(obj, dict) else obj):
            if total > budget:
                break
            if isinstance(item, str | list | tuple | dict):
                total += weight(item, budget - total)
        return total
    return 1


def check_size(what: str, size: int, limit: int = MAX_SEQUENCE) -> None:
    if size > limit:
        raise too_large(what, size, limit)


def check_weight(what: str, obj: Any) -> None:
    """Refuse turning a value into text when the text would exceed MAX_SEQUENCE."""
    if isinstance(obj, list | tuple | dict):
        check_size(what, weight(obj))


def check_repeat(seq: Any, count: Any) -> None:
    """``seq * count`` for strings, lists and tuples, before Python builds it."""
    if isinstance(seq, str | list | tuple) and isinstance(count, int) and count > 0:
        check_size("*", weight(seq) * count)


def check_add(left: Any, right: Any) -> None:
    """``a + b`` on strings or lists: the doubling ``{% set s = s + s %}`` stops here."""
    if isinstance(left, str | list | tuple) and isinstance(right, str | list | tuple):
        check_size("+", weight(left) + weight(right))


# --- format specs -----------------------------------------------------------------------

_NUMBERS = re.compile(r"\d+")
_ALIGN = "<>=^"
_PERCENT_SPEC = re.compile(
    r"%(?:\([^)]*\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d*))?[hlL]?([a-zA-Z%])"
)


def check_format_spec(spec: str) -> None:
    """Width and precision of one ``str.format`` field (``{:>200000000}``, ``{:.{p}f}``).

    The spec arrives with nested fields already substituted, so ``{:{w}}`` is checked
    with its real width. Any number in it (after a fill character) counts.
    """
    if not spec:
        return
    rest = spec[2:] if len(spec) > 1 and spec[1] in _ALIGN else spec
    rest = rest[1:] if rest[:1] in tuple(_ALIGN) else rest
    for number in _NUMBERS.findall(rest):
        if len(number) > 6 or int(number) > MAX_FORMAT_WIDTH:
            raise too_many(t("tpl.limit_width"), number, MAX_FORMAT_WIDTH)


def check_percent_format(template: str, values: Any) -> None:
    """``'%0200000000d' % 1``, ``'%*d' % (10**9, 1)`` and the ``format`` filter."""
    total = len(template)
    for match in _PERCENT_SPEC.finditer(template):
        for number in match.group(1, 2):
            if number == "*":
                raise too_many(t("tpl.limit_width"), "*", MAX_FORMAT_WIDTH)
            if number and (len(number) > 6 or int(number) > MAX_FORMAT_WIDTH):
                raise too_many(t("tpl.limit_width"), number, MAX_FORMAT_WIDTH)
            total += int(number) if number else 0
    check_size("%", total)
    for value in (values if isinstance(values, tuple) else (values,)):
        check_weight("%", value)


# --- per-render budget --------------------------------------------------------------------


@dataclass
class Budget:
    """What one render may still spend."""

    deadline: float
    iterations: int = 0


_budget: ContextVar[Budget | None] = ContextVar("template_budget", default=None)


@contextmanager
def render_budget(seconds: float | None = None) -> Iterator[Budget]:
    """A fresh budget for one render; a render nested in another shares the outer one."""
    seconds = MAX_RENDER_SECONDS if seconds is None else seconds
    outer = _budget.get()
    if outer is not None:
        yield outer
        return
    budget = Budget(deadline=time.monotonic() + seconds)
    token = _budget.set(budget)
    try:
        yield budget
    finally:
        _budget.reset(token)


def check_time() -> None:
    """Raise once the current render is past its time budget."""
    budget = _budget.get()
    if budget is not None and time.monotonic() > budget.deadline:
        raise TemplateLimit(t("tpl.limit_time", seconds=MAX_RENDER_SECONDS))


def count_iteration() -> None:
    """One more loop step of the current render (all loops together)."""
    budget = _budget.get()
    if budget is None:
        return
    budget.iterations += 1
    if budget.iterations > MAX_LOOP_ITERATIONS:
        raise TemplateLimit(t("tpl.limit_loops", limit=MAX_LOOP_ITERATIONS))
    if budget.iterations % _TIME_CHECK_EVERY == 0:
        check_time()


def guarded_iter(value: Iterable[Any]) -> Iterator[Any]:
    """Every ``{% for %}`` iterates through this (see ``templating._guard_tree``)."""
    for item in value:
        count_iteration()
        yield item


def bounded_range(*args: int) -> range:
    """``range`` for templates: at most MAX_RANGE numbers."""
    numbers = range(*args)
    if len(numbers) > MAX_RANGE:
        raise too_many("range", len(numbers), MAX_RANGE)
    return numbers


def bounded_join(chunks: Iterable[str]) -> str:
    """The render's output, refused once it passes MAX_OUTPUT_BYTES (UTF-8)."""
    parts: list[str] = []
    total = 0
    for chunk in chunks:
        total += len(chunk) if chunk.isascii() else len(chunk.encode("utf-8", "replace"))
        if total > MAX_OUTPUT_BYTES:
            raise TemplateLimit(t("tpl.limit_output", limit=MAX_OUTPUT_BYTES))
        parts.append(chunk)
        if len(parts) % _TIME_CHECK_EVERY == 0:
            check_time()
    return "".join(parts)


_GROUP = 16  # chunks counted at once: at most 16 guarded chunks past the limit in memory


def bounded_parts(chunks: Iterable[str]) -> list[str]:
    """The render's output chunks, refused once they pass MAX_OUTPUT_BYTES (UTF-8).

    Same limit as :func:`bounded_join`, without its per-chunk Python loop (~50 µs for
    the ~400 chunks of a campaign email here): chunks are counted 16 at a time in C,
    as characters while four bytes per character still fit the limit, exactly (UTF-8)
    after that.  The caller joins them, or encodes them chunk by chunk
    (:meth:`engine.message.mime.QuotedPrintableCache.encode_canonical_parts`).
    """
    parts: list[str] = []
    iterator = iter(chunks)
    size = 0
    exact = False
    groups = 0
    while group := list(islice(iterator, _GROUP)):
        parts += group
        if not exact:
            size += sum(map(len, group))
            if size * 4 > MAX_OUTPUT_BYTES:  # could pass the limit: count bytes now
                exact = True
                size = sum(map(_utf8_size, parts))
        else:
            size += sum(map(_utf8_size, group))
        if size > MAX_OUTPUT_BYTES:
            raise TemplateLimit(t("tpl.limit_output", limit=MAX_OUTPUT_BYTES))
        groups += 1
        if groups % (_TIME_CHECK_EVERY // _GROUP) == 0:
            check_time()
    return parts


def _utf8_size(chunk: str) -> int:
    return len(chunk) if chunk.isascii() else len(chunk.encode("utf-8", "replace"))
