"""Hostile input: fuzzed YAML, CSV and tracking tokens, sandbox escapes, SQL injection,
oversized files.

The promises: the campaign loader only ever raises ``CampaignValidationError`` with
``file:line:col`` messages; the CSV importers never raise anything but
``ImportFileError`` (and then write nothing) and account for every row; the token parser
only raises ``InvalidToken``; templates from YAML never reach Python internals; segment
rule values are data, never SQL; oversized inputs are refused fast or streamed.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import assume, given
from hypothesis import strategies as st
from sqlalchemy import func, inspect, select
from sqlalchemy.orm import Session

from engine.campaign.audience import count_audience, iter_audience_ids
from engine.campaign.loader import CampaignValidationError, load_campaign
from engine.campaign.template_checks import render_context
from engine.campaign.yamlsource import MAX_NODES
from engine.config import Settings
from engine.customers.csvfile import ImportFileError, inspect_csv
from engine.customers.customer_import import CUSTOMER_COLUMNS, import_customers
from engine.customers.order_import import ORDER_COLUMNS, import_orders
from engine.db import get_engine, session_factory
from engine.delivery import scheduler
from engine.engagement.tracking import (
    InvalidToken,
    make_click_token,
    make_open_token,
    make_unsubscribe_token,
    parse_token,
)
from engine.message import templating
from engine.models import Consent, Customer, Delivery, Order, OrderEvent, OrderItem, Product
from tests.factories import NOW, make_business, make_customer, make_order, make_product
from tests.faults.conftest import fuzz

REPO = Path(__file__).resolve().parents[2]
CAMPAIGN_TEXTS = {p.name: p.read_text() for p in sorted((REPO / "campaigns").glob("*.yaml"))}
PROMO = CAMPAIGN_TEXTS["promo-tenun-akhir-tahun-2026.yaml"]
ERROR_LINE = re.compile(r"^(?P<file>.+?):(?P<line>\d+):(?P<col>\d+): (?P<msg>\S.*)$", re.DOTALL)


# ============================================================================ campaign YAML
def check_campaign_file(path: Path, text_lines: int) -> None:
    """Load ``path``: a spec, or CampaignValidationError whose every message is
    ``file:line:col: message`` inside the file. Anything else propagates (test fails)."""
    try:
        load_campaign(path)
    except CampaignValidationError as exc:
        if not exc.errors and _root_is_an_empty_node(path):
            return  # known GAP, see test_file_of_only_a_tag_or_anchor_gets_a_located_error
        assert exc.errors, "an error without messages"
        for error in exc.errors:
            found = ERROR_LINE.match(str(error))
            assert found, str(error)
            assert found["file"] == str(path)
            assert 1 <= int(found["line"]) <= text_lines + 1, (str(error), text_lines)
            assert int(found["col"]) >= 1
            assert "Traceback" not in found["msg"]


def _root_is_an_empty_node(path: Path) -> bool:
    try:
        root = yaml.compose(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError):
        return False
    return isinstance(root, yaml.ScalarNode) and root.value == ""


@pytest.mark.parametrize("text", ["!", "&anker", "--- !\n"])
def test_file_of_only_a_tag_or_anchor_gets_a_located_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "kosong.yaml"
    path.write_text(text)
    with pytest.raises(CampaignValidationError) as caught:
        load_campaign(path)
    assert caught.value.errors and str(caught.value).startswith(f"{path}:1:1: ")


def write_and_check(tmp_path: Path, data: str | bytes) -> None:
    path = tmp_path / "kampanye.yaml"
    if isinstance(data, bytes):
        path.write_bytes(data)
        lines = data.count(b"\n")
    else:
        path.write_text(data, encoding="utf-8", errors="surrogatepass")
        lines = data.count("\n") + data.count("\r") + data.count("\x85") \
            + data.count("\u2028") + data.count("\u2029")
    check_campaign_file(path, lines + 1)


@fuzz()
@given(text=st.text(max_size=400))
def test_random_text_only_ever_gives_located_validation_errors(tmp_path: Path, text: str) -> None:
    write_and_check(tmp_path, text)


@fuzz(0.5)
@given(data=st.binary(max_size=400))
def test_random_bytes_only_ever_give_located_validation_errors(tmp_path: Path,
                                                              data: bytes) -> None:
    write_and_check(tmp_path, data)


CAMPAIGN_KEYS = ["version", "id", "name", "type", "tags", "timezone", "schedule", "start",
                 "end", "send_window", "from", "to", "cron", "trigger", "event",
                 "inactive_days", "audience", "include", "exclude", "frequency_cap", "max",
                 "per_days", "consent", "tag", "kecamatan", "purchased_product", "any", "all",
                 "products", "opt_in", "per_message", "offer", "kind", "percent", "code",
                 "channels", "email", "template", "subject", "preheader", "variants",
                 "facebook", "account", "per", "whatsapp", "mode", "tracking", "utm",
                 "content", "articles", "trainings", "<<", "~", "", "0"]
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-2**70, 2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=40),
    st.sampled_from(["promotional", "email/promotional.mjml", "{{ customer.first_name }}",
                     "{{ customer.__class__ }}", "2026-12-01 09:00", "25:99", "Asia/Makassar",
                     "53.02.01", "marketing", "* * * * *", "{% for %}", "1", "NO", "yes"]),
)
YAMLISH = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(CAMPAIGN_KEYS), st.text(max_size=8)),
                        inner, max_size=5)),
    max_leaves=25)


@fuzz()
@given(data=st.dictionaries(st.sampled_from(CAMPAIGN_KEYS), YAMLISH, max_size=8))
def test_random_yaml_structures_only_give_located_validation_errors(
    tmp_path: Path, data: dict[str, Any],
) -> None:
    write_and_check(tmp_path, yaml.safe_dump(data, allow_unicode=True, sort_keys=False))


def _set_at(tree: Any, path: list[int], value: Any) -> Any:
    """Replace the node reached by ``path`` (indices into keys/items, modulo their count)."""
    if not path or not isinstance(tree, dict | list) or not tree:
        return value
    if isinstance(tree, dict):
        key = list(tree)[path[0] % len(tree)]
        return {**tree, key: _set_at(tree[key], path[1:], value)}
    index = path[0] % len(tree)
    return [*tree[:index], _set_at(tree[index], path[1:], value), *tree[index + 1:]]


@fuzz()
@given(name=st.sampled_from(sorted(CAMPAIGN_TEXTS)),
       path=st.lists(st.integers(0, 50), min_size=1, max_size=5), value=YAMLISH)
def test_valid_campaigns_with_one_subtree_replaced_give_located_errors_or_load(
    tmp_path: Path, name: str, path: list[int], value: Any,
) -> None:
    tree = yaml.safe_load(CAMPAIGN_TEXTS[name])
    mutated = _set_at(tree, path, value)
    write_and_check(tmp_path, yaml.safe_dump(mutated, allow_unicode=True, sort_keys=False))


YAML_NOISE = st.one_of(st.text(max_size=12),
                       st.sampled_from([":", ": ", "- ", "[", "]", "{", "}", "#", "&a ", "*a",
                                        "!!python/object:os.system ", "|", ">", "'", '"',
                                        "%", "@", "`", "\t", "\n", "  ", "---\n", "<<: *a",
                                        "!!binary ", "? ", "\ufeff", "\x00", "\u2028"]))


@fuzz()
@given(name=st.sampled_from(sorted(CAMPAIGN_TEXTS)),
       edits=st.lists(st.tuples(st.sampled_from(["insert", "delete", "dup_line", "swap"]),
                                st.floats(0, 1), st.floats(0, 1), YAML_NOISE),
                      min_size=1, max_size=4))
def test_text_mutations_of_valid_campaigns_give_located_errors_or_load(
    tmp_path: Path, name: str, edits: list[tuple[str, float, float, str]],
) -> None:
    text = CAMPAIGN_TEXTS[name]
    for op, a, b, noise in edits:
        i, j = sorted((int(a * len(text)), int(b * len(text))))
        lines = text.split("\n")
        k, m = int(a * (len(lines) - 1)), int(b * (len(lines) - 1))
        if op == "insert":
            text = text[:i] + noise + text[i:]
        elif op == "delete":
            text = text[:i] + text[j:]
        elif op == "dup_line":
            text = "\n".join([*lines[:k + 1], lines[k], *lines[k + 1:]])
        else:
            lines[k], lines[m] = lines[m], lines[k]
            text = "\n".join(lines)
    write_and_check(tmp_path, text)


def test_python_object_tags_are_refused_not_executed(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "jahat.yaml"
    path.write_text(PROMO.replace(
        "name: Promo Tenun Ikat Akhir Tahun",
        f"name: !!python/object/apply:os.system ['touch {marker}']"))
    with pytest.raises(CampaignValidationError) as caught:
        load_campaign(path)
    assert not marker.exists()
    assert all(ERROR_LINE.match(str(e)) for e in caught.value.errors)


# ----------------------------------------------------------------------------- oversized YAML
def test_ten_thousand_key_yaml_is_refused_quickly_with_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "raksasa.yaml"
    path.write_text("version: 1\n" + "".join(f"kunci{i}: {i}\n" for i in range(MAX_NODES)))
    # CPU time of this process, not the wall clock: "quickly" is about the work the
    # refusal costs (it stops at the node limit), which other load cannot inflate.
    started = time.process_time()
    with pytest.raises(CampaignValidationError) as caught:
        load_campaign(path)
    used = time.process_time() - started
    assert used < 2.0, f"{used:.2f} s CPU"
    (error,) = caught.value.errors
    assert str(error).startswith(f"{path}:") and "10000" in error.message
    assert "node" in error.message


def test_alias_bomb_is_refused_quickly(tmp_path: Path) -> None:
    lines = ["version: 1", "a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
    path = tmp_path / "bom.yaml"
    path.write_text("\n".join(lines) + "\n")
    started = time.monotonic()
    with pytest.raises(CampaignValidationError) as caught:
        load_campaign(path)
    assert time.monotonic() - started < 2.0
    assert any("10000" in e.message for e in caught.value.errors), caught.value


def test_file_over_one_megabyte_is_refused_before_parsing(tmp_path: Path) -> None:
    path = tmp_path / "besar.yaml"
    path.write_text(PROMO + "# " + "x" * 2_000_000 + "\n")
    started = time.monotonic()
    with pytest.raises(CampaignValidationError) as caught:
        load_campaign(path)
    assert time.monotonic() - started < 1.0
    (error,) = caught.value.errors
    assert str(error).startswith(f"{path}:1:1: ") and "1000000" in error.message


# ============================================================================ Jinja sandbox
ESCAPES = [
    "{{ ''.__class__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ customer.__class__.__mro__ }}",
    "{{ customer.__init__.__globals__ }}",
    "{{ customer['__class__'] }}",
    "{{ cycler.__init__.__globals__.os.system('id') }}",
    "{{ joiner.__init__.__globals__ }}",
    "{{ namespace.__init__.__globals__ }}",
    "{{ namespace(a=1).__class__ }}",
    "{{ lipsum.__globals__['os'] }}",
    "{{ self._TemplateReference__context }}",
    "{{ self.__init__.__globals__ }}",
    "{{ self.__dict__ }}",
    "{{ ()|attr('__class__') }}",
    "{{ customer|attr('__class__')|attr('__mro__') }}",
    "{{ ''|attr('\\x5f\\x5fclass\\x5f\\x5f') }}",
    "{{ ''['\\x5f\\x5fclass\\x5f\\x5f'] }}",
    "{{ ''.__getattribute__('__class__') }}",
    "{{ '{0.__class__}'.format(customer) }}",
    "{{ '{0.__class__.__mro__}'.format_map({'0': 1}) }}",
    "{{ '%s'|format(customer.__class__) }}",
    "{{ customer.first_name.__class__.__base__.__subclasses__() }}",
    "{{ customer.items().__class__ }}",
    "{{ products.append(1) }}",
    "{{ customer.update({'a': 1}) }}",
    "{{ dict.__init__ }}",
    "{{ request.application.__globals__ }}",
    "{{ config.items() }}",
    "{% macro m() %}{{ m.__globals__ }}{% endmacro %}{{ m() }}",
    "{% include '../engine/config.py' %}",
    "{% include '/etc/passwd' %}",
    "{% extends '../../etc/passwd' %}",
    "{{ 'a' * 10000000 }}",
    "{{ 2 ** 100000 }}",
    "{{ range(10 ** 9) | list }}",
]


@pytest.mark.parametrize("payload", ESCAPES)
def test_sandbox_escape_in_a_subject_is_rejected_at_validate_time(tmp_path: Path,
                                                                  payload: str) -> None:
    subject = '    subject: "{{ customer.first_name }}, diskon {{ offer.percent }}% tenun ikat TTS"'
    assert subject in PROMO
    path = tmp_path / "kabur.yaml"
    path.write_text(PROMO.replace(subject, f"    subject: {json.dumps(payload)}"))
    line = PROMO.split("\n").index(subject) + 1
    with pytest.raises(CampaignValidationError) as caught:
        load_campaign(path)
    assert [e.line for e in caught.value.errors] == [line], caught.value
    assert "subject" in caught.value.errors[0].message
    # and the same text rendered directly never produces output either
    with pytest.raises(templating.TemplateProblem):
        templating.render_checked(templating.compile_string(payload), render_context({}))


EXHAUSTION = {
    "power_tower": "{{ ((9 ** 999) ** 999) ** 999 }}",
    "replace": "{{ ('a' * 99999) | replace('a', 'a' * 5000) }}",
    "center": "{{ 'a' | center(500000000) }}",
    "concat": "{% set s = 'a' * 99999 %}" + "{% set s = s ~ s %}" * 12 + "{{ s }}",
}
EXHAUST_CHILD = r"""
import json, resource, sys, time
from pathlib import Path
resource.setrlimit(resource.RLIMIT_AS, (1_500_000_000, 1_500_000_000))
from engine.campaign.loader import CampaignValidationError, load_campaign

def peak_mb():  # VmHWM is per address space: fresh after exec (ru_maxrss is inherited)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")

base = peak_mb()
started = time.monotonic()
try:
    load_campaign(Path(sys.argv[1]))
    outcome = "accepted"
except CampaignValidationError as exc:
    outcome = "rejected"
print(json.dumps({"outcome": outcome, "seconds": time.monotonic() - started,
                  "growth_mb": peak_mb() - base}))
"""


@pytest.mark.parametrize("payload", list(EXHAUSTION.values()), ids=list(EXHAUSTION))
def test_resource_exhaustion_in_a_subject_is_rejected_fast_and_small(
    tmp_path: Path, payload: str,
) -> None:
    subject = '    subject: "{{ customer.first_name }}, diskon {{ offer.percent }}% tenun ikat TTS"'
    path = tmp_path / "rakus.yaml"
    path.write_text(PROMO.replace(subject, f"    subject: {json.dumps(payload)}"))
    env = {**os.environ, "PYTHONPATH": str(REPO), "SECRET_KEY": "x" * 40}
    try:
        done = subprocess.run([sys.executable, "-c", EXHAUST_CHILD, str(path)], env=env,
                              capture_output=True, text=True, timeout=8, cwd=tmp_path,
                              check=False)
    except subprocess.TimeoutExpired:
        pytest.fail("validation still busy after 8 s")
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["outcome"] == "rejected", result
    assert result["seconds"] < 3 and result["growth_mb"] < 100, result


@pytest.mark.parametrize("field", ["preheader", "variants", "utm"])
def test_sandbox_escape_in_other_yaml_expressions_is_rejected(tmp_path: Path, field: str) -> None:
    payload = json.dumps("{{ cycler.__init__.__globals__.os }}")
    original = {
        "preheader": '    preheader: "Kode {{ offer.code }} berlaku sampai '
                     '{{ offer.ends | tanggal }}"',
        "variants": '    variants: [{name: B, subject: "Tenun ikat pilihan untuk '
                    '{{ customer.first_name }}"}]',
        "utm": 'tracking: {utm: {source: dinas-tts, medium: "{{ channel }}", campaign: '
               '"{{ campaign.id }}"}}',
    }[field]
    replaced = {
        "preheader": f"    preheader: {payload}",
        "variants": f"    variants: [{{name: B, subject: {payload}}}]",
        "utm": f"tracking: {{utm: {{source: dinas-tts, medium: {payload}}}}}",
    }[field]
    assert original in PROMO
    path = tmp_path / "kabur.yaml"
    path.write_text(PROMO.replace(original, replaced))
    with pytest.raises(CampaignValidationError) as caught:
        load_campaign(path)
    line = PROMO.split("\n").index(original) + 1
    assert {e.line for e in caught.value.errors} == {line}, caught.value


@pytest.mark.parametrize("template", ["../engine/config.py", "/etc/passwd.mjml",
                                      "email/../../engine/config.mjml"])
def test_template_paths_outside_templates_are_rejected(tmp_path: Path, template: str) -> None:
    path = tmp_path / "jalur.yaml"
    path.write_text(PROMO.replace("template: email/promotional.mjml",
                                  f"template: {json.dumps(template)}"))
    with pytest.raises(CampaignValidationError) as caught:
        load_campaign(path)
    assert all(ERROR_LINE.match(str(e)) for e in caught.value.errors)


# ============================================================================ tracking tokens
@pytest.fixture
def secret(sqlite_settings: Settings) -> Settings:
    """Tokens are signed with the secret key of these settings."""
    return sqlite_settings


KINDS = st.sampled_from(["click", "open", "unsubscribe", "", "admin", "CLICK"])


@fuzz()
@given(token=st.one_of(st.text(max_size=300),
                       st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                        "0123456789-_=", max_size=80),
                       st.binary(max_size=80), st.none(), st.integers()),
       kind=KINDS)
def test_random_tokens_only_raise_invalid_token(secret: Settings, token: Any, kind: str) -> None:
    with pytest.raises(InvalidToken):
        parse_token(token, kind)  # type: ignore[arg-type]


@fuzz()
@given(ids=st.tuples(st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1)),
       which=st.sampled_from(["click", "open", "unsubscribe"]),
       position=st.floats(0, 1), replacement=st.characters(), cut=st.booleans())
def test_tampered_tokens_are_rejected(secret: Settings, ids: tuple[int, int], which: str,
                                      position: float, replacement: str, cut: bool) -> None:
    token = {"click": lambda: make_click_token(*ids), "open": lambda: make_open_token(ids[0]),
             "unsubscribe": lambda: make_unsubscribe_token(ids[0])}[which]()
    assert parse_token(token, which).kind == which  # type: ignore[arg-type]  # genuine: accepted
    i = int(position * (len(token) - 1))
    forged = token[:i] if cut else token[:i] + replacement + token[i + 1:]
    assume(forged != token)
    with pytest.raises(InvalidToken):
        parse_token(forged, which)


# ============================================================================ CSV imports
TABLES = (Customer, Consent, Order, OrderItem, OrderEvent)


def table_counts(settings: Settings) -> dict[str, int]:
    with session_factory(settings)() as session:
        return {t.__tablename__: int(session.scalar(select(func.count()).select_from(t)) or 0)
                for t in TABLES}


def to_bytes(rows: list[list[str]], delimiter: str, encoding: str) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue().encode(encoding, errors="replace")


def check_import(settings: Settings, path: Path, kind: str) -> None:
    """The import either refuses the file (nothing written) or accounts for every row."""
    importer, spec = {"customers": (import_customers, CUSTOMER_COLUMNS),
                      "orders": (import_orders, ORDER_COLUMNS)}[kind]
    before = table_counts(settings)
    try:
        report = importer(path, batch_size=3)  # several transactions per file
    except ImportFileError as exc:
        assert str(exc).startswith(f"{path}:"), str(exc)
        assert table_counts(settings) == before, "a refused file wrote something"
        return
    after = table_counts(settings)
    assert report.total == inspect_csv(path, spec).rows
    created = after["customer"] - before["customer"] + after["order"] - before["order"]
    assert 0 <= created <= report.accepted
    assert len(report.errors) == report.rejected
    for error in report.errors:
        assert str(error).startswith(f"{path}:{error.line}: ") and error.line >= 2


CUSTOMER_HEADERS = ["nama", "email", "telepon", "kecamatan", "izin_email", "izin_wa", "tag",
                    "minat", "Nama Lengkap", "No. HP", "E-mail", "bukan_kolom", ""]
CELLS = st.one_of(
    st.sampled_from(["Maria Tefa", "maria@contoh.id", "MARIA@CONTOH.ID", "081234567890",
                     "+62 812-3456-7890", "0388-21000", "Kota Soe", "53.02.01", "99.99.99",
                     "ya", "tidak", "mungkin", "makanan", "kerajinan, makanan", "", " ", '"',
                     'a"b', "=HYPERLINK(\"http://x\")", "😀", "\u202e", "x" * 300,
                     "'; DROP TABLE customer; --", "1 OR 1=1", "\r", "\n"]),
    st.text(max_size=20))
ENCODINGS = st.sampled_from(["utf-8", "utf-8-sig", "latin-1", "cp1252", "utf-16"])
DELIMITERS = st.sampled_from([",", ";", "\t"])


@fuzz(0.25)
@given(header=st.lists(st.sampled_from(CUSTOMER_HEADERS), min_size=1, max_size=6),
       rows=st.lists(st.lists(CELLS, max_size=7), max_size=12),
       delimiter=DELIMITERS, encoding=ENCODINGS)
def test_customer_import_of_random_rows_never_tracebacks_or_half_writes(
    settings: Settings, tmp_path: Path, header: list[str], rows: list[list[str]],
    delimiter: str, encoding: str,
) -> None:
    path = tmp_path / "pelanggan.csv"
    path.write_bytes(to_bytes([header, *rows], delimiter, encoding))
    check_import(settings, path, "customers")


@fuzz(0.25)
@given(data=st.binary(max_size=600), kind=st.sampled_from(["customers", "orders"]))
def test_import_of_random_bytes_never_tracebacks_or_half_writes(
    settings: Settings, tmp_path: Path, data: bytes, kind: str,
) -> None:
    path = tmp_path / "acak.csv"
    path.write_bytes(data)
    check_import(settings, path, kind)


@pytest.fixture
def shop(settings: Settings) -> dict[str, str]:
    """One business, product and customer the fuzzed order rows may refer to."""
    with session_factory(settings)() as session:
        business = make_business(session)
        make_product(session, business, sku="SKU-FUZZ")
        make_customer(session, email="pembeli@contoh.id")
        session.commit()
        return {"nib": business.nib}


@fuzz(0.25)
@given(rows=st.lists(st.lists(st.one_of(st.sampled_from(
    ["INV-1", "INV-2", "NIB", "9999999999999", "pembeli@contoh.id", "orang@lain.id", "SKU-FUZZ",
     "SKU-LAIN", "1", "0", "-3", "2,5", "150000", "Rp 150.000", "1e9", "01/12/2026 09:00",
     "31/02/2026", "2026-12-01", "dikirim", "ditagih", "hilang", "JNE", ""]), st.text(max_size=10)),
    min_size=0, max_size=9), max_size=12), encoding=ENCODINGS)
def test_order_import_of_random_rows_never_tracebacks_or_half_writes(
    settings: Settings, shop: dict[str, str], tmp_path: Path, rows: list[list[str]],
    encoding: str,
) -> None:
    header = ["order_ref", "nib", "email_pelanggan", "sku", "qty", "harga", "tanggal",
              "status", "kurir"]
    rows = [[shop["nib"] if c == "NIB" else c for c in row] for row in rows]
    path = tmp_path / "pesanan.csv"
    path.write_bytes(to_bytes([header, *rows], ",", encoding))
    check_import(settings, path, "orders")


@pytest.mark.parametrize("fault", ["broken_quote", "bad_byte"])
def test_a_file_broken_after_the_first_batches_writes_nothing(
    settings: Settings, tmp_path: Path, fault: str,
) -> None:
    lines = ["nama,email,izin_email"] + [f"Pelanggan {i},p{i}@contoh.id,ya" for i in range(1200)]
    if fault == "broken_quote":
        lines[1100] = 'Pelanggan "rusak,"p@contoh.id,ya'
        body = ("\n".join(lines) + "\n").encode()
    else:
        body = ("\n".join(lines) + "\n").encode().replace(b"Pelanggan 1100,",
                                                          b"Pelanggan \xe9,")  # latin-1
    path = tmp_path / "rusak.csv"
    path.write_bytes(body)
    before = table_counts(settings)
    with pytest.raises(ImportFileError) as caught:
        import_customers(path, batch_size=100)
    assert str(caught.value).startswith(f"{path}:")
    assert re.match(rf"{re.escape(str(path))}:\d+: ", str(caught.value))
    assert table_counts(settings) == before


# ============================================================================ SQL injection
INJECTIONS = [
    "'; DROP TABLE customer; --",
    "1 OR 1=1",
    "' OR '1'='1",
    '" OR "1"="1',
    "%",
    "_",
    "*",
    "%' OR 1=1 --",
    "53.02.01' OR 'a'='a",
    "1; DELETE FROM delivery",
    "') OR ('1'='1",
    "' UNION SELECT id FROM customer --",
    "\\'; DROP TABLE customer; --",
    "pelanggan-setia' --",
]


def injection_rules(value: str) -> list[dict[str, Any]]:
    return [{"tag": value}, {"kecamatan": [value]}, {"kecamatan": ["53.02.01", value][1:]},
            {"purchased_product": value}, {"purchased_category": value},
            {"any": [{"tag": value}, {"purchased_product": value}]}]


def test_segment_rule_values_are_data_never_sql(settings: Settings, db: Session) -> None:
    shop = make_business(db)
    tenun = make_product(db, shop, sku="SKU-TENUN")
    buyers = [make_customer(db, tags=["pelanggan-setia"], kecamatan_code="53.02.01")
              for _ in range(4)]
    for buyer in buyers:
        make_order(db, buyer, [tenun], at=NOW)
    db.commit()
    customers_before = table_counts(settings)["customer"]

    def matched(rule: dict[str, Any]) -> int:
        audience = {"include": [rule]}
        count = count_audience(db, audience, campaign_type="transactional", now=NOW).matched
        ids = [i for batch in iter_audience_ids(db, audience, campaign_type="transactional",
                                                 now=NOW) for i in batch]
        assert count == len(ids)
        return count

    # the same rules with genuine values do select (so "0" below is not an accident)
    for genuine in ({"tag": "pelanggan-setia"}, {"kecamatan": ["53.02.01"]},
                    {"purchased_product": "SKU-TENUN"},
                    {"purchased_category": "kerajinan_tangan"}):
        assert matched(genuine) == 4, genuine
    for value in INJECTIONS:
        for rule in injection_rules(value):
            assert matched(rule) == 0, rule
    db.rollback()
    assert table_counts(settings)["customer"] == customers_before
    names = set(inspect(get_engine(settings)).get_table_names())
    assert {"customer", "delivery", "order", "product"} <= names


@pytest.mark.parametrize("value", ["'; DROP TABLE customer; --", "1 OR 1=1"])
def test_injection_in_a_campaign_yaml_plans_nobody_and_drops_nothing(
    settings: Settings, db: Session, tmp_path: Path, value: str,
) -> None:
    for _ in range(3):
        make_customer(db, tags=["pelanggan-setia"], marketing=True)
    db.commit()
    quoted = json.dumps(value)
    audience = (f"audience:\n  include: [{{consent: marketing}}, {{tag: {quoted}}}, "
                f"{{purchased_product: {quoted}}}]\n")
    text = re.sub(r"audience:\n(  .*\n)+", audience, PROMO)
    path = tmp_path / "suntik.yaml"
    path.write_text(text)
    spec = load_campaign(path)
    result = scheduler.launch(db, spec, str(path), now=NOW)
    assert result.run is not None
    emails = db.scalars(select(Delivery).where(Delivery.run_id == result.run.id,
                                               Delivery.channel == "email")).all()
    assert emails == []
    assert db.scalar(select(func.count()).select_from(Customer)) == 3
    assert db.scalar(select(func.count()).select_from(Product)) is not None


# ============================================================================ oversized CSV
CHILD = r"""
import json, sys
from pathlib import Path
from engine.customers.csvfile import ImportFileError
from engine.customers.customer_import import import_customers

def peak_mb():  # VmHWM is per address space: fresh after exec (ru_maxrss is inherited)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")

path = Path(sys.argv[1])
base = peak_mb()
out = {}
try:
    report = import_customers(path)
    out.update(outcome="imported", accepted=report.accepted, rejected=report.rejected)
except ImportFileError as exc:
    out.update(outcome="refused", message=str(exc))
out["growth_mb"] = peak_mb() - base
print(json.dumps(out))
"""
FIFTY_MB = 50 * 1024 * 1024
MEMORY_BUDGET_MB = 64  # streaming: well below the 50 MB the file itself would take twice


def write_big_csv(path: Path, header: str, row: str, tail: str = "") -> None:
    """~50 MB of ``row`` lines (written in chunks: the test process stays small too)."""
    chunk = row * max(1, (1024 * 1024) // len(row))
    with path.open("w") as handle:
        handle.write(header)
        written = len(header)
        while written < FIFTY_MB:
            handle.write(chunk)
            written += len(chunk)
        handle.write(tail)


def import_in_child(settings: Settings, path: Path, timeout: float) -> dict[str, Any]:
    """Import in a fresh interpreter and report its peak memory growth during the import."""
    env = {**os.environ, "DATABASE_URL": settings.effective_database_url,
           "VAR_DIR": settings.var_dir, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", CHILD, str(path)], capture_output=True,
                          text=True, env=env, timeout=timeout, cwd=REPO, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_fifty_mb_csv_broken_at_the_end_is_refused_streaming_and_writes_nothing(
    sqlite_settings: Settings, tmp_path: Path,
) -> None:
    path = tmp_path / "besar-rusak.csv"
    write_big_csv(path, "nama,email,izin_email\n", "Pelanggan Uji,p@contoh.id,ya\n",
                  tail='Pelanggan "rusak,"x@contoh.id,ya\n')
    before = table_counts(sqlite_settings)
    started = time.monotonic()
    result = import_in_child(sqlite_settings, path, timeout=120)
    assert result["outcome"] == "refused" and "CSV rusak" in result["message"], result
    assert result["growth_mb"] < MEMORY_BUDGET_MB, result
    assert table_counts(sqlite_settings) == before
    print(f"50 MB refused in {time.monotonic() - started:.1f} s, +{result['growth_mb']:.0f} MB")


def test_fifty_mb_single_line_is_refused_with_bounded_memory(
    sqlite_settings: Settings, tmp_path: Path,
) -> None:
    path = tmp_path / "satu-baris.csv"
    write_big_csv(path, "nama,email\n", "x" * 4096)
    result = import_in_child(sqlite_settings, path, timeout=120)
    assert result["outcome"] == "refused", result
    assert result["growth_mb"] < MEMORY_BUDGET_MB, result
    print(f"50 MB line refused, +{result['growth_mb']:.0f} MB")


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_fifty_mb_of_rejected_rows_imports_with_bounded_memory(
    sqlite_settings: Settings, tmp_path: Path,
) -> None:
    path = tmp_path / "besar-salah.csv"
    write_big_csv(path, "nama,email\n", "Pelanggan Uji Coba,bukan-email\n")
    started = time.monotonic()
    result = import_in_child(sqlite_settings, path, timeout=600)
    assert result["outcome"] == "imported" and result["accepted"] == 0, result
    assert result["growth_mb"] < MEMORY_BUDGET_MB, result
    print(f"{result['rejected']} rows rejected in {time.monotonic() - started:.0f} s, "
          f"+{result['growth_mb']:.0f} MB")


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_fifty_mb_customer_import_streams_with_bounded_memory(
    sqlite_settings: Settings, tmp_path: Path,
) -> None:
    path = tmp_path / "besar.csv"
    with path.open("w") as handle:
        handle.write("nama,email,telepon,kecamatan,izin_email\n")
        written, i = 0, 0
        while written < FIFTY_MB:
            row = f"Pelanggan {i},p{i}@contoh.id,0812{i:08d},Kota Soe,ya\n"
            handle.write(row)
            written += len(row)
            i += 1
    started = time.monotonic()
    result = import_in_child(sqlite_settings, path, timeout=900)
    assert result["outcome"] == "imported" and result["accepted"] == i, result
    assert result["growth_mb"] < MEMORY_BUDGET_MB, result
    print(f"{i} customers imported in {time.monotonic() - started:.0f} s, "
          f"+{result['growth_mb']:.0f} MB")
