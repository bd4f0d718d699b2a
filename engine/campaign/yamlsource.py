"""Read a YAML file into plain Python data *and* remember where every value came from.

Why not ``yaml.safe_load``: it forgets positions (so errors could not say
``file:line:column``), silently keeps the last of two duplicate keys, and uses YAML 1.1
implicit types, where ``to: 20:00`` is the integer 1200 and ``country: NO`` is ``False``.

This module composes the node graph with PyYAML (whose marks give the positions), then
converts it itself with YAML 1.2 core-schema scalars (null, true/false, int, float;
everything else stays text for pydantic to parse), refusing duplicate keys, merge keys
and inputs that are too large or too deep. Work is bounded: the file size is checked
before reading, and nodes are counted while composing and again while converting
(aliases are expanded by conversion, which is where "billion laughs" would explode).
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from engine.common.errors import os_reason
from engine.common.i18n import t

MAX_BYTES = 1_000_000
MAX_NODES = 10_000
MAX_DEPTH = 64



@dataclass(frozen=True)
class Position:
    """1-based line and column, as editors show them."""

    line: int
    column: int


@dataclass(frozen=True)
class SourceProblem:
    """A problem found while reading YAML, before any schema check."""

    position: Position
    message: str


@dataclass
class SourceMap:
    """Where each value of the document sits: path -> (key position, value position).

    A path is a tuple of mapping keys (str) and sequence indexes (int), the same shape
    as a pydantic error ``loc``. The root is ``()`` with no key position.
    """

    keys: dict[tuple[str | int, ...], Position] = field(default_factory=dict)
    values: dict[tuple[str | int, ...], Position] = field(default_factory=dict)

    def deepest(self, loc: tuple[str | int, ...]) -> tuple[tuple[str | int, ...], bool]:
        """The longest prefix of ``loc`` that exists here, and whether all of ``loc`` did.

        Elements that are not document keys (pydantic union tags) are skipped, so a
        ``loc`` that passes through a tagged union still lands on the right node.
        """
        path: tuple[str | int, ...] = ()
        complete = True
        for element in loc:
            candidate = (*path, element)
            if candidate in self.values:
                path = candidate
            else:
                complete = False
        return path, complete

    def key_or_value(self, path: tuple[str | int, ...]) -> Position:
        return self.keys.get(path) or self.values.get(path) or Position(1, 1)

    def value(self, path: tuple[str | int, ...]) -> Position:
        return self.values.get(path) or self.key_or_value(path)


@dataclass
class Document:
    """A parsed YAML document: data (or None when unusable), positions and problems."""

    data: Any
    source_map: SourceMap
    problems: list[SourceProblem]


class _LimitExceeded(Exception):
    def __init__(self, problem: SourceProblem):
        super().__init__(problem.message)
        self.problem = problem


def _position(mark: yaml.Mark | None) -> Position:
    if mark is None:
        return Position(1, 1)
    return Position(mark.line + 1, mark.column + 1)


# YAML 1.2 core schema: only these plain scalars are not text.
_CORE_RESOLVERS: list[tuple[str, re.Pattern[str], list[str]]] = [
    ("tag:yaml.org,2002:null", re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""]),
    ("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
     list("tTfF")),
    ("tag:yaml.org,2002:int", re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"),
     list("-+0123456789")),
    ("tag:yaml.org,2002:float",
     re.compile(r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
                r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"),
     list("-+.0123456789")),
]


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 core scalars and node/depth limits while composing."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.node_count = 0
        self.depth = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        self.node_count += 1
        self.depth += 1
        try:
            mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
            if self.node_count > MAX_NODES:
                raise _LimitExceeded(SourceProblem(
                    _position(mark), t("yaml.too_many_nodes", limit=MAX_NODES)))
            if self.depth > MAX_DEPTH:
                raise _LimitExceeded(SourceProblem(
                    _position(mark), t("yaml.too_deep", limit=MAX_DEPTH)))
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


_Loader.yaml_implicit_resolvers = {}  # drop YAML 1.1 types (yes/no, 20:00 = 1200)
for _tag, _regexp, _first in _CORE_RESOLVERS:
    _Loader.add_implicit_resolver(_tag, _regexp, _first)


def _translate_yaml_error(exc: yaml.YAMLError, text: str) -> SourceProblem:
    """Turn PyYAML's English problems into a localized message at PyYAML's own mark."""
    if isinstance(exc, yaml.reader.ReaderError):
        line = text.count("\n", 0, exc.position) + 1
        column = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
        return SourceProblem(Position(line, column),
                             t("yaml.control_char", code=int(exc.character)))
    if not isinstance(exc, yaml.MarkedYAMLError):
        return SourceProblem(Position(1, 1), t("yaml.generic", problem=str(exc)))
    problem = exc.problem or ""
    context = exc.context or ""
    position = _position(exc.problem_mark)
    context_line = exc.context_mark.line + 1 if exc.context_mark else position.line
    message = _known_problem(problem, context, context_line)
    return SourceProblem(position, message or t("yaml.generic", problem=problem or str(exc)))


def _known_problem(problem: str, context: str, context_line: int) -> str | None:
    if "'\\t'" in problem:
        return t("yaml.tab")
    if match := re.match(r"found character (.+) that cannot start any token", problem):
        return t("yaml.bad_char", char=match.group(1))
    if problem.startswith("mapping values are not allowed"):
        return t("yaml.mapping_here")
    if problem.startswith("expected <block end>"):
        return t("yaml.bad_indent", context_line=context_line)
    if "quoted scalar" in context and "end of stream" in problem:
        return t("yaml.unclosed_quote", context_line=context_line)
    if match := re.match(r"expected ',' or '([\]}])'", problem):
        return t("yaml.unclosed_flow", context_line=context_line, closer=match.group(1))
    if problem.startswith("could not find expected ':'"):
        return t("yaml.no_colon", context_line=context_line)
    if "single document" in context:
        return t("yaml.multi_doc")
    if match := re.match(r"found undefined alias '(.+)'", problem):
        return t("yaml.undefined_alias", name=match.group(1))
    return None


def read_text(path: Path) -> tuple[str | None, SourceProblem | None]:
    """Read at most ``MAX_BYTES`` of UTF-8 text; never raises for a user mistake."""
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            return None, SourceProblem(Position(1, 1),
                                       t("yaml.too_big", size=size, limit=MAX_BYTES))
        with path.open("rb") as handle:
            raw = handle.read(MAX_BYTES + 1)
    except OSError as exc:
        return None, SourceProblem(Position(1, 1), t("yaml.unreadable", reason=os_reason(exc)))
    if len(raw) > MAX_BYTES:
        return None, SourceProblem(Position(1, 1),
                                   t("yaml.too_big", size=f"{len(raw)}+", limit=MAX_BYTES))
    try:
        return raw.decode("utf-8-sig"), None
    except UnicodeDecodeError as exc:
        prefix = raw[: exc.start].decode("utf-8", errors="replace")
        line = prefix.count("\n") + 1
        column = len(prefix) - (prefix.rfind("\n") + 1) + 1
        return None, SourceProblem(Position(line, column), t("yaml.not_utf8", position=exc.start))


def parse(text: str) -> Document:
    """Compose and convert ``text``; all problems are returned, never raised."""
    source_map = SourceMap()
    try:
        loader = _Loader(text)
        try:
            root = loader.get_single_node()
        finally:
            loader.dispose()
    except _LimitExceeded as exc:
        return Document(None, source_map, [exc.problem])
    except yaml.YAMLError as exc:
        return Document(None, source_map, [_translate_yaml_error(exc, text)])
    if root is None:
        return Document(None, source_map, [SourceProblem(Position(1, 1), t("yaml.empty"))])
    converter = _Converter(source_map)
    try:
        data = converter.convert(root, ())
    except _LimitExceeded as exc:
        return Document(None, source_map, [exc.problem])
    return Document(data, source_map, converter.problems)


class _Converter:
    """Node graph -> plain data, recording positions and duplicate keys on the way."""

    def __init__(self, source_map: SourceMap) -> None:
        self.source_map = source_map
        self.problems: list[SourceProblem] = []
        self.visited = 0

    def convert(self, node: Node, path: tuple[str | int, ...]) -> Any:
        self.visited += 1
        if self.visited > MAX_NODES:
            raise _LimitExceeded(SourceProblem(_position(node.start_mark),
                                               t("yaml.too_many_nodes", limit=MAX_NODES)))
        if len(path) > MAX_DEPTH:
            raise _LimitExceeded(SourceProblem(_position(node.start_mark),
                                               t("yaml.too_deep", limit=MAX_DEPTH)))
        self.source_map.values[path] = _position(node.start_mark)
        if isinstance(node, MappingNode):
            return self._mapping(node, path)
        if isinstance(node, SequenceNode):
            return [self.convert(item, (*path, i)) for i, item in enumerate(node.value)]
        return self._scalar(node)

    @staticmethod
    def _scalar(node: Node) -> Any:
        """YAML 1.2 core values; explicit tags other than the core ones stay text."""
        value = str(node.value)
        if node.tag == "tag:yaml.org,2002:null":
            return None
        if node.tag == "tag:yaml.org,2002:bool":
            return value.lower() == "true"
        if node.tag == "tag:yaml.org,2002:int":
            with contextlib.suppress(ValueError):
                return int(value, 0) if value[:2] in ("0o", "0x") else int(value, 10)
        if node.tag == "tag:yaml.org,2002:float":
            with contextlib.suppress(ValueError):
                return float(value.replace(".inf", "inf").replace(".Inf", "inf")
                             .replace(".INF", "inf").lower().replace(".nan", "nan"))
        return value

    def _mapping(self, node: MappingNode, path: tuple[str | int, ...]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key_pos = _position(key_node.start_mark)
            if not isinstance(key_node, ScalarNode):
                self.problems.append(SourceProblem(key_pos, t("yaml.complex_key")))
                continue
            if key_node.value == "<<" and key_node.style is None:
                self.problems.append(SourceProblem(key_pos, t("yaml.merge_key")))
                continue
            key = str(key_node.value)
            child = (*path, key)
            if key in result:
                first = self.source_map.keys[child]
                self.problems.append(
                    SourceProblem(key_pos, t("yaml.duplicate_key", name=key, line=first.line)))
                continue
            self.source_map.keys[child] = key_pos
            result[key] = self.convert(value_node, child)
        return result
