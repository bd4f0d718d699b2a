"""``make messages``: message keys from the code into the gettext catalogs.

Babel's extraction reads every literal key (``babel.cfg``: Python through
:func:`extract_python`, Jinja through ``jinja2.ext.babel_extract``, the email layouts with their
compile-time ``[[ ]]`` delimiters) and write the templates
``engine/locale/umkm.pot`` and ``channels/locale/channels.pot``. A key that a ``.po`` file
lacks is added to it with an empty text for a translator to fill in (``make install`` then
compiles it). Keys of the catalogs that no literal call uses are only listed: some keys are
built at run time (``t(f"dp.status.{status}")``), so a listed key may still be in use.
"""

from __future__ import annotations

import ast
import contextlib
import io
import sys
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, cast

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent
LANGS = ("id", "en")
WIDTH = 100  # the width the .po files are written at (a round trip leaves them unchanged)


@dataclass(frozen=True)
class Domain:
    """One gettext domain: where its keys are written, how they are called, its catalogs."""

    name: str
    locale_dir: str
    sources: tuple[str, ...]  # babel.cfg patterns of this domain start with one of these
    keywords: tuple[str, ...]

    def po(self, root: Path, lang: str) -> Path:
        return root / self.locale_dir / lang / "LC_MESSAGES" / f"{self.name}.po"

    def pot(self, root: Path) -> Path:
        return root / self.locale_dir / f"{self.name}.pot"


DOMAINS = (
    Domain("umkm", "engine/locale", ("engine/", "web/", "workers/", "templates/"),
           ("t", "_", "text_of")),
    # channels/ raise ConfigurationError("channel.key", ...) and render it without the engine.
    Domain("channels", "channels/locale", ("channels/",), ("ConfigurationError",)),
)


def _literals(node: ast.expr) -> list[str] | None:
    """The keys a first argument can be: both branches of ``"a" if x else "b"``; None when
    the key is computed at run time (an f-string, a variable)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.IfExp):
        body, orelse = _literals(node.body), _literals(node.orelse)
        return body + orelse if body is not None and orelse is not None else None
    return None


def _called_name(node: ast.Call) -> str | None:
    func = node.func
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)


def extract_python(fileobj: IO[bytes], keywords: Collection[str], comment_tags: Collection[str],
                   options: dict[str, Any]) -> Iterator[tuple[int, str, str, list[str]]]:
    """Babel extraction method for Python (``babel.cfg``: ``scripts.messages.extract_python``).

    Babel's own tokenizer-based extractor glues both keys of ``t("a" if x else "b")`` into
    one; reading the syntax tree yields each. A call whose key is computed at run time is
    reported on stderr, as Babel does for f-strings.
    """
    name = getattr(fileobj, "name", "(unknown)")
    tree = ast.parse(fileobj.read(), filename=name)
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        funcname = _called_name(node)
        if funcname is None or funcname not in keywords:
            continue
        keys = _literals(node.args[0])
        if keys is None:
            sys.stderr.write(f"{name}:{node.lineno}: key computed at run time\n")
            continue
        for key in keys:
            yield node.lineno, funcname, key, []


@dataclass
class Extracted:
    """The literal keys of one domain (key -> files using it) and the calls skipped."""

    keys: dict[str, set[str]]
    skipped: list[str]


def mapping(root: Path = ROOT) -> tuple[list[tuple[str, str]], dict[str, dict[str, Any]]]:
    parse: Callable[[IO[str]], tuple[Any, Any]] = parse_mapping_cfg  # untyped in Babel
    with (root / "babel.cfg").open(encoding="utf-8") as handle:
        method_map, options_map = parse(handle)
    return list(method_map), dict(options_map)


def extract(domain: Domain, root: Path = ROOT) -> Extracted:
    """Every literal key of ``domain`` in the files babel.cfg maps to it."""
    method_map, options_map = mapping(root)
    mine = [(pattern, method) for pattern, method in method_map
            if pattern.startswith(domain.sources)]
    keys: dict[str, set[str]] = {}
    skipped = io.StringIO()
    with contextlib.redirect_stderr(skipped):  # one line per key computed at run time
        for filename, _line, message, _comments, _context in extract_from_dir(
                root, mine, options_map, keywords=dict.fromkeys(domain.keywords)):
            if isinstance(message, str) and message:
                keys.setdefault(message, set()).add(filename)
    return Extracted(keys, [line for line in skipped.getvalue().splitlines() if line])


def read_catalog(path: Path, lang: str) -> Catalog:
    with path.open("rb") as handle:
        return read_po(handle, locale=lang)


def write_catalog(path: Path, catalog: Catalog) -> None:
    buffer = io.BytesIO()
    write_po(buffer, catalog, width=WIDTH, include_lineno=False)
    path.write_bytes(buffer.getvalue())


def catalog_keys(catalog: Catalog) -> set[str]:
    return {message.id for message in catalog if isinstance(message.id, str) and message.id}


def _locations(files: Iterable[str]) -> list[tuple[str, int]]:
    """Files without line numbers (as the .po files keep them): a moved line changes nothing."""
    return [(file, cast(int, None)) for file in sorted(files)]


def template(domain: Domain, found: Extracted) -> Catalog:
    """The .pot: every extracted key with the files that use it, sorted by key."""
    pot = Catalog(project="umkm-tts", version="0.1.0", domain=domain.name,
                  copyright_holder="Dinas Kabupaten Timor Tengah Selatan")
    for key in sorted(found.keys):
        pot.add(key, locations=_locations(found.keys[key]))
    return pot


def _body(data: bytes) -> bytes:
    """A .pot without its creation date, so an unchanged template is not rewritten."""
    return b"\n".join(line for line in data.splitlines()
                      if not line.startswith(b'"POT-Creation-Date:'))


def write_template(path: Path, pot: Catalog) -> bool:
    """Write the .pot when its messages changed; True when it was written."""
    buffer = io.BytesIO()
    write_po(buffer, pot, width=WIDTH, include_lineno=False, omit_header=False)
    if path.is_file() and _body(path.read_bytes()) == _body(buffer.getvalue()):
        return False
    path.write_bytes(buffer.getvalue())
    return True


def add_missing(path: Path, lang: str, found: Extracted) -> list[str]:
    """Add the extracted keys ``path`` lacks, with an empty text; the keys added."""
    catalog = read_catalog(path, lang)
    missing = sorted(set(found.keys) - catalog_keys(catalog))
    for key in missing:
        catalog.add(key, "", locations=_locations(found.keys[key]))
    if missing:
        write_catalog(path, catalog)
    return missing


def unused(keys: Iterable[str], found: Extracted) -> list[str]:
    return sorted(set(keys) - set(found.keys))


def _lines(title: str, items: list[str]) -> Iterator[str]:
    if items:
        yield f"{title} ({len(items)}):"
        yield from (f"  {item}" for item in items)


def update(domain: Domain, root: Path = ROOT) -> list[str]:
    """Extract, write the .pot, add missing keys to each .po; the report as lines."""
    found = extract(domain, root)
    pot_path = domain.pot(root)
    written = write_template(pot_path, template(domain, found))
    report = [f"{domain.name}: {len(found.keys)} keys in literal calls; "
              f"{pot_path.relative_to(root)} {'written' if written else 'unchanged'}"]
    for lang in LANGS:
        po = domain.po(root, lang)
        report += _lines(f"added to {po.relative_to(root)} (texts to write)",
                         add_missing(po, lang, found))
    in_catalog = catalog_keys(read_catalog(domain.po(root, "id"), "id"))
    report += _lines("in the catalog but in no literal call (built at run time, or stale?)",
                     unused(in_catalog, found))
    if found.skipped:
        report.append(f"{len(found.skipped)} calls compute their key at run time")
    return report


def main() -> int:
    for domain in DOMAINS:
        print("\n".join(update(domain)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
