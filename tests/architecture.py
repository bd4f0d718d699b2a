"""The import graph of the source tree, read with :mod:`ast` (nothing is imported or run).

Every import counts: top level, inside functions and classes, and literal
``importlib.import_module("...")`` calls, so a late import cannot hide a circle. Only imports
under ``if TYPE_CHECKING:`` are left out (they never run). ``from a.b import c`` is an arrow
to ``a.b.c`` when ``c`` is a module, else to ``a.b``; relative imports are resolved against
the importing module's package.

:func:`check` returns every broken rule as a readable line naming ``file:line``:

- no import circle between modules;
- forbidden arrows between top-level packages (:func:`forbidden_arrow`);
- inside ``engine/`` no package imports a package above it in :data:`ENGINE_LAYERS`.

The rules are data here and in ``docs/architecture.md``; tests/test_architecture.py runs them
over the real tree and over tiny fake trees that must fail.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

PACKAGES = ("engine", "channels", "web", "workers")

# Lowest first: a package may import its own floor and the floors below it, never above.
ENGINE_LAYERS = (
    "ground", "common", "media", "umkm", "customers", "engagement", "message", "campaign",
    "outbox", "social", "delivery", "reporting", "demo", "cli",
)
# The ground floor: settings, database, the models package (and its table modules) and
# the package itself.
GROUND = frozenset({"engine", "engine.config", "engine.db", "engine.models"})
# Arrows allowed although they point up: engine/__init__ installs log redaction on import.
ALLOWED_UPWARD = frozenset({("engine", "engine.common.logsafe")})

MAX_LINES = 600


@dataclass(frozen=True)
class Arrow:
    """One import: ``source`` imports ``target``, written at ``path:line``."""

    source: str
    target: str
    path: str
    line: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.source} -> {self.target}"


# --- reading the tree ---------------------------------------------------------------------

def discover(root: Path, packages: Iterable[str] = PACKAGES) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` below the given top-level packages."""
    modules: dict[str, Path] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join(parts)] = path
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


class _ImportFinder(ast.NodeVisitor):
    """Import statements and literal ``import_module`` calls, skipping TYPE_CHECKING blocks."""

    def __init__(self) -> None:
        self.found: list[ast.Import | ast.ImportFrom | ast.Call] = []

    def visit_If(self, node: ast.If) -> None:
        if not _is_type_checking(node.test):
            self.generic_visit(node)
            return
        for statement in node.orelse:
            self.visit(statement)

    def visit_Import(self, node: ast.Import) -> None:
        self.found.append(node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        self.found.append(node)

    def visit_Call(self, node: ast.Call) -> None:
        if _is_import_module_call(node):
            self.found.append(node)
        self.generic_visit(node)


def _is_import_module_call(node: ast.Call) -> bool:
    if len(node.args) != 1:
        return False
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    arg = node.args[0]
    return name == "import_module" and isinstance(arg, ast.Constant) and isinstance(arg.value, str)


def _package_of(module: str, path: Path) -> str:
    return module if path.name == "__init__.py" else module.rpartition(".")[0]


def _absolute(module: str, path: Path, node: ast.ImportFrom) -> str:
    """The absolute name ``from <this> import ...`` refers to (relative imports resolved)."""
    if node.level == 0:
        return node.module or ""
    base = _package_of(module, path).split(".")
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def _known(name: str, modules: dict[str, Path]) -> str | None:
    """The longest prefix of ``name`` that is one of our modules (None: outside the tree)."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in modules:
            return candidate
    return None


def _targets(module: str, path: Path, node: ast.Import | ast.ImportFrom | ast.Call) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom):
        base = _absolute(module, path, node)
        return [f"{base}.{alias.name}" if alias.name != "*" else base for alias in node.names]
    assert isinstance(node, ast.Call) and isinstance(node.args[0], ast.Constant)
    return [str(node.args[0].value)]


def arrows_of(module: str, path: Path, modules: dict[str, Path], root: Path) -> list[Arrow]:
    """Every import of ``module`` that lands in the tree, one arrow per target."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    shown = str(path.relative_to(root))
    finder = _ImportFinder()
    finder.visit(tree)
    found: list[Arrow] = []
    for node in finder.found:
        for name in _targets(module, path, node):
            target = _known(name, modules)
            if target is not None and target != module:
                found.append(Arrow(module, target, shown, node.lineno))
    return found


def all_arrows(root: Path, packages: Iterable[str] = PACKAGES) -> list[Arrow]:
    modules = discover(root, packages)
    return [arrow for module, path in modules.items()
            for arrow in arrows_of(module, path, modules, root)]


# --- circles ------------------------------------------------------------------------------

def _graph(arrows: Iterable[Arrow]) -> dict[str, dict[str, Arrow]]:
    """source -> {target: the first arrow written for that pair}."""
    graph: dict[str, dict[str, Arrow]] = {}
    for arrow in arrows:
        graph.setdefault(arrow.source, {}).setdefault(arrow.target, arrow)
        graph.setdefault(arrow.target, {})
    return graph


def strongly_connected(graph: dict[str, dict[str, Arrow]]) -> list[list[str]]:
    """Tarjan's components with more than one module (each one holds at least one circle)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component: list[str] = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def shortest_circle(graph: dict[str, dict[str, Arrow]], members: list[str]) -> list[Arrow]:
    """One shortest circle through the first member, staying inside the component."""
    inside = set(members)
    start = members[0]
    came_from: dict[str, Arrow] = {}
    frontier = [start]
    while frontier:
        following: list[str] = []
        for node in frontier:
            for target, arrow in sorted(graph[node].items()):
                if target not in inside:
                    continue
                if target == start:
                    return _walk_back(came_from, arrow, start)
                if target not in came_from:
                    came_from[target] = arrow
                    following.append(target)
        frontier = following
    raise AssertionError(f"no circle through {start} in {members}")


def _walk_back(came_from: dict[str, Arrow], last: Arrow, start: str) -> list[Arrow]:
    path = [last]
    while path[0].source != start:
        path.insert(0, came_from[path[0].source])
    return path


def circles(arrows: Iterable[Arrow]) -> list[str]:
    """One line per circle: the modules in order, then each arrow with its file:line."""
    graph = _graph(arrows)
    found = []
    for members in strongly_connected(graph):
        circle = shortest_circle(graph, members)
        names = " -> ".join([arrow.source for arrow in circle] + [circle[0].source])
        where = "; ".join(f"{arrow.path}:{arrow.line}" for arrow in circle)
        extra = f" (component of {len(members)}: {', '.join(members)})" \
            if len(members) > len(circle) else ""
        found.append(f"import circle {names} [{where}]{extra}")
    return found


# --- arrows between packages and floors ---------------------------------------------------

def _top(module: str) -> str:
    return module.partition(".")[0]


def forbidden_arrow(source: str, target: str) -> str | None:
    """Why this arrow between top-level packages is not allowed (None: it is)."""
    src, dst = _top(source), _top(target)
    if src == "channels" and dst in {"engine", "web", "workers"}:
        return "channels import nothing of engine, web or workers"
    if src == "engine" and dst in {"web", "workers"} and layer_of(source) != "cli":
        return "only engine.cli may import web or workers"
    if src == "workers" and dst == "web":
        return "workers do not import web"
    if src == "web" and dst == "workers":
        return "web does not import workers"
    return None


def layer_of(module: str) -> str | None:
    """The floor of an engine module (None outside engine/ or in an unknown subpackage)."""
    if module in GROUND or module.startswith("engine.models."):
        return "ground"
    parts = module.split(".")
    if parts[0] != "engine" or len(parts) < 2 or parts[1] not in ENGINE_LAYERS:
        return None
    return parts[1]


def upward(source: str, target: str) -> str | None:
    """Why this engine arrow points up (None: it points down or sideways, or is allowed)."""
    src, dst = layer_of(source), layer_of(target)
    if src is None or dst is None or (source, target) in ALLOWED_UPWARD:
        return None
    if ENGINE_LAYERS.index(dst) > ENGINE_LAYERS.index(src):
        return f"{src} may not import {dst} (above it)"
    return None


def arrow_violations(arrows: Iterable[Arrow]) -> list[str]:
    found = []
    for arrow in arrows:
        reason = forbidden_arrow(arrow.source, arrow.target) or upward(arrow.source, arrow.target)
        if reason is not None:
            found.append(f"{arrow}: {reason}")
    return found


def unknown_engine_packages(modules: Iterable[str]) -> list[str]:
    """Engine modules on no floor: a new subpackage must be given its place in the order."""
    return sorted(module for module in modules
                  if _top(module) == "engine" and layer_of(module) is None)


def check(root: Path, packages: Iterable[str] = PACKAGES) -> list[str]:
    """Every broken layout rule in the tree under ``root``."""
    packages = tuple(packages)
    arrows = all_arrows(root, packages)
    unplaced = [f"{name}: engine module outside every floor of ENGINE_LAYERS"
                for name in unknown_engine_packages(discover(root, packages))]
    return circles(arrows) + arrow_violations(arrows) + unplaced


def long_modules(root: Path, packages: Iterable[str] = PACKAGES,
                 limit: int = MAX_LINES) -> list[str]:
    """``path: N lines`` for every module longer than ``limit`` lines."""
    found = []
    for path in discover(root, packages).values():
        count = len(path.read_text(encoding="utf-8").splitlines())
        if count > limit:
            found.append(f"{path.relative_to(root)}: {count} lines (limit {limit})")
    return sorted(found)
