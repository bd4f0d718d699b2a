"""The gettext catalogs hold every text the code asks for, in both languages alike.

Keys are read the way ``make messages`` reads them (scripts/messages.py over babel.cfg): literal
``t("...")`` and ``text_of("...")`` in Python, ``_("...")`` in Jinja templates (the email layouts
with their ``[[ ]]`` compile-time delimiters), ``ConfigurationError("...")`` in channels/.
"""

from __future__ import annotations

import ast
import re
import string
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po

from scripts import messages

ROOT = Path(__file__).resolve().parent.parent
PO_FILES = sorted([*ROOT.glob("engine/locale/*/LC_MESSAGES/*.po"),
                   *ROOT.glob("channels/locale/*/LC_MESSAGES/*.po")])
DOMAINS = {domain.name: domain for domain in messages.DOMAINS}


def _catalog(domain: messages.Domain, lang: str) -> Catalog:
    return messages.read_catalog(domain.po(ROOT, lang), lang)


def _texts(domain: messages.Domain, lang: str) -> dict[str, str]:
    return {str(m.id): str(m.string or "") for m in _catalog(domain, lang) if m.id}


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


def test_the_po_files_are_found() -> None:
    assert {path.parent.parent.name for path in PO_FILES} == set(messages.LANGS)
    assert len(PO_FILES) == len(messages.LANGS) * len(messages.DOMAINS)


@pytest.mark.parametrize("path", PO_FILES, ids=lambda path: str(path.relative_to(ROOT)))
def test_every_po_parses_with_babel(path: Path) -> None:
    with path.open("rb") as handle:
        catalog = read_po(handle, locale=path.parent.parent.name, abort_invalid=True)
    assert len(catalog) > 0


def test_every_literal_key_has_an_indonesian_text() -> None:
    indonesian = {key: text for domain in messages.DOMAINS
                  for key, text in _texts(domain, "id").items() if text}
    missing = [f"{key} ({', '.join(sorted(files))})"
               for domain in messages.DOMAINS
               for key, files in sorted(messages.extract(domain, ROOT).keys.items())
               if key not in indonesian]
    assert not missing, "keys without an Indonesian text (run `make messages`):\n" \
        + "\n".join(missing)


@pytest.mark.parametrize("name", sorted(DOMAINS))
def test_id_and_en_catalogs_have_the_same_keys(name: str) -> None:
    domain = DOMAINS[name]
    indonesian, english = set(_texts(domain, "id")), set(_texts(domain, "en"))
    assert sorted(indonesian - english) == [], "only in Indonesian"
    assert sorted(english - indonesian) == [], "only in English"


@pytest.mark.parametrize("name", sorted(DOMAINS))
def test_english_uses_the_placeholders_of_indonesian(name: str) -> None:
    domain = DOMAINS[name]
    indonesian, english = _texts(domain, "id"), _texts(domain, "en")
    differ = [f"{key}: id {sorted(_fields(indonesian[key]))}, en {sorted(_fields(text))}"
              for key, text in sorted(english.items())
              if text and key in indonesian and _fields(text) != _fields(indonesian[key])]
    assert not differ, "\n".join(differ)


def test_no_module_keeps_a_message_table() -> None:
    table = re.compile(r"\bregister\(\s*\{")
    offenders = [str(path.relative_to(ROOT))
                 for package in ("engine", "web", "channels")
                 for path in sorted((ROOT / package).rglob("*.py"))
                 if table.search(path.read_text(encoding="utf-8"))]
    assert not offenders, "texts belong in the .po catalogs: " + ", ".join(offenders)


def _per_language_dicts(source: str) -> list[int]:
    """Lines of ``{"id": ..., "en": ...}`` or ``dict(id=..., en=...)``: a message table in code.

    The syntax tree is read, not the text, so a docstring that shows the shape (as
    engine/common/i18n.py's :func:`register` does for plugins) is not a table.
    """
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Dict):
            keys = {k.value for k in node.keys if isinstance(k, ast.Constant)}
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "dict":
            keys = {k.arg for k in node.keywords}
        else:
            continue
        if set(messages.LANGS) <= keys:
            found.append(node.lineno)
    return found


def test_a_per_language_dict_is_recognised() -> None:
    source = '"""Shape: {"id": ..., "en": ...}."""\nA = {"id": "Pesan", "en": "Messages"}\n' \
        'B = dict(id="Pesan", en="Messages")\nC = {"id": 1}\n'
    assert _per_language_dicts(source) == [2, 3]


def test_no_module_keeps_a_per_language_dict() -> None:
    offenders = [f"{path.relative_to(ROOT)}:{line}"
                 for package in ("engine", "web", "channels")
                 for path in sorted((ROOT / package).rglob("*.py"))
                 for line in _per_language_dicts(path.read_text(encoding="utf-8"))]
    assert not offenders, "texts belong in the .po catalogs: " + ", ".join(offenders)


# --- the extraction itself ----------------------------------------------------------------

def test_email_layout_keys_are_read_through_the_compile_delimiters() -> None:
    found = messages.extract(DOMAINS["umkm"], ROOT).keys
    assert "templates/email/layouts/components.mjml" in found["email.by"]
    assert "templates/email/layouts/base.txt" in found["email.why"]


def test_both_keys_of_a_conditional_are_read(tmp_path: Path) -> None:
    (tmp_path / "babel.cfg").write_text("[scripts.messages.extract_python: engine/**.py]\n")
    (tmp_path / "engine").mkdir()
    (tmp_path / "engine" / "ops.py").write_text(
        'from engine.common.i18n import t\n'
        'def say(ok, key):\n'
        '    print(t("ops.paused" if ok else "ops.not_paused", run=1))\n'
        '    print(t(key), t(f"ops.{key}"))\n')
    found = messages.extract(DOMAINS["umkm"], tmp_path)
    assert sorted(found.keys) == ["ops.not_paused", "ops.paused"]
    assert len(found.skipped) == 2


def test_update_adds_missing_keys_to_both_catalogs(tmp_path: Path) -> None:
    (tmp_path / "babel.cfg").write_text(
        "[scripts.messages.extract_python: engine/**.py]\n[jinja2: web/templates/**.html]\n")
    (tmp_path / "engine").mkdir()
    (tmp_path / "engine" / "a.py").write_text('t("old.key")\nt("new.key", n=1)\n')
    (tmp_path / "web" / "templates").mkdir(parents=True)
    (tmp_path / "web" / "templates" / "p.html").write_text('{{ _("page.key", x=1) }}\n')
    domain = DOMAINS["umkm"]
    for lang in messages.LANGS:
        catalog = Catalog(locale=lang, domain="umkm")
        catalog.add("old.key", "lama")
        catalog.add("stale.key", "basi")
        domain.po(tmp_path, lang).parent.mkdir(parents=True)
        messages.write_catalog(domain.po(tmp_path, lang), catalog)

    report = messages.update(domain, tmp_path)

    for lang in messages.LANGS:
        texts = {str(m.id): m.string for m in messages.read_catalog(domain.po(tmp_path, lang), lang)
                 if m.id}
        assert texts == {"old.key": "lama", "stale.key": "basi", "new.key": "", "page.key": ""}
    pot = messages.read_catalog(domain.pot(tmp_path), "id")
    assert sorted(str(m.id) for m in pot if m.id) == ["new.key", "old.key", "page.key"]
    assert "  stale.key" in report
    assert messages.update(domain, tmp_path)[0].endswith("engine/locale/umkm.pot unchanged")
