"""Static limit checks of campaign templates: every branch, not only the sampled one.

``umkm campaign validate`` test-renders templates with a sample context, so a bomb in a
branch that context does not take (``{% if customer.first_name == 'Zed' %}``) would
pass and only be refused at send time.  This walk of the parsed Jinja tree (``env.parse``)
applies the same limits as :mod:`engine.message.limits` to every *literal* argument:
format widths and precisions (``'{:>200000000}'.format``, ``'%0200000000d' % 1``, the
``format`` filter), ``indent`` widths, ``lipsum`` counts and ``*`` repetition counts.
Values computed at render time stay the send-time guards' job.
"""

from __future__ import annotations

import string
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from jinja2 import TemplateSyntaxError, nodes

from engine.message import limits, templating


@dataclass(frozen=True)
class StaticProblem:
    """A literal that breaks a limit, at ``lineno`` of the source."""

    lineno: int
    message: str


def _const(node: nodes.Node | None) -> Any:
    return node.value if isinstance(node, nodes.Const) else None


def _format_fields(text: str) -> Iterator[str]:
    """The format specs of a ``str.format`` template, nested ones included."""
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError:
        return
    for _, _, spec, _ in parsed:
        if spec:
            yield spec
            yield from _format_fields(spec)


def _check_call(node: nodes.Call) -> None:
    target = node.node
    if isinstance(target, nodes.Getattr) and target.attr == "format":
        text = _const(target.node)
        if isinstance(text, str):
            for spec in _format_fields(text):
                limits.check_format_spec(spec)
    if isinstance(target, nodes.Name) and target.name == "lipsum":
        args = {k.key: k.value for k in node.kwargs}
        for i, key in enumerate(("n", "html", "min", "max")):
            if i < len(node.args):
                args[key] = node.args[i]
        n, low, high = (_const(args.get(k)) for k in ("n", "min", "max"))
        if isinstance(n, int) and n > limits.MAX_LIPSUM_PARAGRAPHS:
            raise limits.too_many("lipsum n", n, limits.MAX_LIPSUM_PARAGRAPHS)
        for label, words in (("lipsum min", low), ("lipsum max", high)):
            if isinstance(words, int) and words > limits.MAX_LIPSUM_WORDS:
                raise limits.too_many(label, words, limits.MAX_LIPSUM_WORDS)


def _check_filter(node: nodes.Filter) -> None:
    first = _const(node.args[0]) if node.args else None
    widths = [first] + [_const(k.value) for k in node.kwargs if k.key == "width"]
    if node.name == "indent":
        for width in widths:
            if isinstance(width, int) and width > limits.MAX_INDENT:
                raise limits.too_many("indent", width, limits.MAX_INDENT)
            if isinstance(width, str) and len(width) > limits.MAX_INDENT:
                raise limits.too_many("indent", len(width), limits.MAX_INDENT)
    if node.name == "format" and isinstance(_const(node.node), str):
        limits.check_percent_format(str(_const(node.node)), ())


def _check_node(node: nodes.Node) -> None:
    if isinstance(node, nodes.Call):
        _check_call(node)
    elif isinstance(node, nodes.Filter):
        _check_filter(node)
    elif isinstance(node, nodes.Mod) and isinstance(_const(node.left), str):
        limits.check_percent_format(str(_const(node.left)), ())
    elif isinstance(node, nodes.Mul):
        left, right = _const(node.left), _const(node.right)
        seq, count = (left, right) if isinstance(right, int) else (right, left)
        limits.check_repeat(seq, count)


def static_problems(source: str) -> list[StaticProblem]:
    """Every literal of ``source`` above a limit (syntax errors are reported elsewhere)."""
    try:
        tree = templating.jinja_env(False).parse(source)
    except TemplateSyntaxError:
        return []
    found: list[StaticProblem] = []
    for node in tree.find_all(nodes.Node):
        try:
            _check_node(node)
        except limits.TemplateLimit as exc:
            found.append(StaticProblem(getattr(node, "lineno", 0) or 0, str(exc)))
    return found


def template_source(name: str) -> str | None:
    """The source of a template file under ``templates/`` (None when unreadable)."""
    env = templating.jinja_env(True)
    if env.loader is None:
        return None
    try:
        source, _, _ = env.loader.get_source(env, name)
    except Exception:  # a missing template is reported by the existence check
        return None
    return source
