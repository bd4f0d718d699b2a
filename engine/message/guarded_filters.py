"""Jinja filters, globals and a formatter that check sizes before they allocate.

Why replacements and not a post-hoc size check: ``indent(100000)`` or
``lipsum(100000)`` would already have used the memory by the time a result could be
measured. Each function here checks its arguments against :mod:`engine.message.limits`
and then calls Jinja's own implementation, so normal templates render identically.
"""

from __future__ import annotations

from string import Formatter
from typing import Any

from jinja2 import nodes, pass_environment, pass_eval_context
from jinja2.filters import (
    do_batch,
    do_format,
    do_indent,
    do_slice,
    do_tojson,
    do_wordwrap,
    sync_do_join,
)
from jinja2.nodes import EvalContext
from jinja2.runtime import markup_join, str_join
from jinja2.sandbox import SandboxedEscapeFormatter, SandboxedFormatter
from jinja2.utils import generate_lorem_ipsum
from jinja2.visitor import NodeTransformer

from engine.message import limits

LOOP_FILTER = "_umkm_loop"
CONCAT_FILTER = "_umkm_concat"


class BoundedFormatter(SandboxedFormatter):
    """``str.format``/``format_map`` with width/precision and total-size limits."""

    _produced = 0

    def vformat(self, format_string: str, args: Any, kwargs: Any) -> str:
        self._produced = 0
        return Formatter.vformat(self, format_string, args, kwargs)

    def format_field(self, value: Any, format_spec: str) -> Any:
        limits.check_format_spec(format_spec)
        limits.check_weight("format", value)
        result = super().format_field(value, format_spec)
        self._produced += len(result)
        limits.check_size("format", self._produced)
        return result


class BoundedEscapeFormatter(BoundedFormatter, SandboxedEscapeFormatter):
    """The same for ``Markup.format`` (escaping its arguments)."""


def bounded_indent(s: Any, width: int | str = 4, first: bool = False,
                   blank: bool = False) -> str:
    """``indent``: at most MAX_INDENT wide and MAX_SEQUENCE characters in all."""
    size = len(width) if isinstance(width, str) else int(width)
    if size > limits.MAX_INDENT:
        raise limits.too_many("indent", size, limits.MAX_INDENT)
    text = str(s)
    limits.check_size("indent", len(text) + (text.count("\n") + 2) * max(size, 0))
    return do_indent(s, width, first, blank)


def bounded_lipsum(n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> str:
    """``lipsum``: a few paragraphs of placeholder text, never megabytes."""
    if n > limits.MAX_LIPSUM_PARAGRAPHS:
        raise limits.too_many("lipsum n", n, limits.MAX_LIPSUM_PARAGRAPHS)
    for label, words in (("lipsum min", min), ("lipsum max", max)):
        if words > limits.MAX_LIPSUM_WORDS:
            raise limits.too_many(label, words, limits.MAX_LIPSUM_WORDS)
    return generate_lorem_ipsum(n, html, min, max)


def bounded_format(value: Any, *args: Any, **kwargs: Any) -> str:
    """The ``format`` filter is ``value % args``: the same spec check as ``%``."""
    limits.check_percent_format(str(value), kwargs or args)
    return do_format(value, *args, **kwargs)


@pass_eval_context
def bounded_join(eval_ctx: EvalContext, value: Any, d: str = "",
                 attribute: str | int | None = None) -> str:
    """``join``: the separator repeated per item counts (``range(10**4)|join('x'*10**5)``)."""
    items = list(value)
    limits.check_size("join", limits.weight(items) + len(str(d)) * len(items))
    return sync_do_join(eval_ctx, items, d, attribute)


def check_str_join(separator: str, args: tuple[Any, ...]) -> tuple[Any, ...]:
    """``sep.join(items)`` as a method: items materialised once, then measured."""
    if not args:
        return args
    items = list(args[0])
    limits.check_size("join", limits.weight(items) + len(separator) * len(items))
    return (items, *args[1:])


@pass_eval_context
def bounded_tojson(eval_ctx: EvalContext, value: Any, indent: int | None = None) -> Any:
    """``tojson``: the indent is repeated on every line."""
    if indent is not None and indent > limits.MAX_INDENT:
        raise limits.too_many("tojson indent", indent, limits.MAX_INDENT)
    limits.check_weight("tojson", value)
    return do_tojson(eval_ctx, value, indent)


def bounded_batch(value: Any, linecount: int, fill_with: Any = None) -> Any:
    if linecount > limits.MAX_SEQUENCE:
        raise limits.too_many("batch", linecount, limits.MAX_SEQUENCE)
    return do_batch(value, linecount, fill_with)


def bounded_slice(value: Any, slices: int, fill_with: Any = None) -> Any:
    if slices > limits.MAX_SEQUENCE:
        raise limits.too_many("slice", slices, limits.MAX_SEQUENCE)
    return do_slice(value, slices, fill_with)


@pass_environment
def bounded_wordwrap(environment: Any, s: str, width: int = 79,
                     break_long_words: bool = True, wrapstring: str | None = None,
                     break_on_hyphens: bool = True) -> str:
    """``wordwrap``: the wrap string is inserted at every break."""
    text = str(s)
    breaks = text.count(" ") + text.count("\n") + len(text) // max(int(width), 1) + 1
    limits.check_size("wordwrap", len(text) + breaks * len(wrapstring or "\n"))
    return do_wordwrap(environment, s, width, break_long_words, wrapstring, break_on_hyphens)


@pass_eval_context
def bounded_concat(eval_ctx: EvalContext, items: list[Any]) -> str:
    """``a ~ b``: the doubling ``{% set s = s ~ s %}`` stops at MAX_SEQUENCE."""
    limits.check_size("~", sum(limits.weight(item) for item in items))
    return markup_join(items) if eval_ctx.autoescape else str_join(items)


class LimitGuards(NodeTransformer):
    """Rewrite a parsed template so loops and ``~`` go through the guards above."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        node.iter = nodes.Filter(node.iter, LOOP_FILTER, [], [], None, None,
                                 lineno=node.iter.lineno)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        items = nodes.List(list(node.nodes), lineno=node.lineno)
        return nodes.Filter(items, CONCAT_FILTER, [], [], None, None, lineno=node.lineno)


FILTERS: dict[str, Any] = {
    "indent": bounded_indent,
    "format": bounded_format,
    "join": bounded_join,
    "tojson": bounded_tojson,
    "batch": bounded_batch,
    "slice": bounded_slice,
    "wordwrap": bounded_wordwrap,
    LOOP_FILTER: limits.guarded_iter,
    CONCAT_FILTER: bounded_concat,
}
GLOBALS: dict[str, Any] = {"range": limits.bounded_range, "lipsum": bounded_lipsum}
