"""docs/regulation.md maps every Pasal to code and tests: each file it names must exist and
each test node id (``file::test``, or ``::test`` for the file named before it) must be a
real test function, so the map cannot quietly point at work that was renamed or never
built."""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "regulation.md"
CODE = re.compile(r"`([^`]+)`")
PATHLIKE = re.compile(r"^(?:engine|web|workers|channels|tests|docs|campaigns|templates|"
                      r"migrations|scripts)(?:/[\w.*<>-]*)*$")


def _rows() -> list[tuple[str, list[str]]]:
    rows = []
    for line in DOC.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells and re.fullmatch(r"\d+(\(\d+\))?", cells[0]):
            rows.append((cells[0], cells[1:]))
    return rows


def _tokens(cell: str) -> list[str]:
    """The backticked names of a cell, in order (paths, test ids, routes, commands)."""
    return [m.group(1).strip() for m in CODE.finditer(cell)]


@cache
def _test_functions(path: Path) -> frozenset[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return frozenset(node.name for node in ast.walk(tree)
                     if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
                     and node.name.startswith("test_"))


def _references() -> list[tuple[str, str, str | None]]:
    """(pasal, path, test or None) for every file or test node the table names."""
    found: list[tuple[str, str, str | None]] = []
    for pasal, cells in _rows():
        for cell in cells:
            current: str | None = None
            for token in _tokens(cell):
                if token.startswith("::") and current:
                    found.append((pasal, current, token[2:]))
                elif "::" in token:
                    current, test = token.split("::", 1)
                    found.append((pasal, current, test))
                elif PATHLIKE.match(token) and "/" in token:
                    current = token if token.startswith("tests/") else current
                    found.append((pasal, token, None))
    return found


def test_the_table_has_every_pasal_from_1_to_16() -> None:
    numbers = {int(re.match(r"\d+", pasal).group()) for pasal, _ in _rows()}  # type: ignore[union-attr]
    assert numbers == set(range(1, 17))


def _ref_id(ref: tuple[str, str, str | None]) -> str:
    return f"Pasal {ref[0]}: {ref[1]}" + (f"::{ref[2]}" if ref[2] else "")


@pytest.mark.parametrize("ref", _references(), ids=_ref_id)
def test_every_named_file_and_test_exists(ref: tuple[str, str, str | None]) -> None:
    pasal, name, test = ref
    matches = list(ROOT.glob(name)) if "*" in name else [ROOT / name]
    assert matches and all(m.exists() for m in matches), f"Pasal {pasal}: no {name}"
    if test is not None:
        assert name.endswith(".py"), f"Pasal {pasal}: {name}::{test} is not a test file"
        function = test.split("[", 1)[0]
        assert function in _test_functions(ROOT / name), \
            f"Pasal {pasal}: {name} has no test function {function}"


def test_every_row_names_at_least_one_test() -> None:
    tested = {pasal for pasal, name, test in _references() if test or name.startswith("tests/")}
    untested = [pasal for pasal, cells in _rows() if pasal not in tested
                and "see Pasal" not in cells[-1]]
    assert not untested, f"rows without a test: {untested}"
