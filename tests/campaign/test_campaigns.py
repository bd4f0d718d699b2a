"""Campaign YAML v1: ``umkm campaign validate`` against a corpus of broken files, the
example campaigns, and the spec helpers the scheduler and planner rely on."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError
from typer.testing import CliRunner

from engine.campaign.fields import CAMPAIGN_TYPES
from engine.campaign.loader import CampaignValidationError, load_campaign, validate_files
from engine.campaign.schema import CampaignSpec, spec_hash
from engine.cli.app import app
from engine.message.templating import template_exists

ROOT = Path(__file__).resolve().parents[2]
BROKEN = Path(__file__).resolve().parents[1] / "campaigns_broken"
EXAMPLES = ROOT / "campaigns"
EXPECTED: dict[str, Any] = json.loads((BROKEN / "expected.json").read_text(encoding="utf-8"))
runner = CliRunner()


def run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


def error_lines(output: str, path: Path) -> list[tuple[str, str]]:
    """``(line:column, message)`` of every ``file:line:column: message`` line for ``path``."""
    pattern = re.compile(rf"^{re.escape(str(path))}:(\d+):(\d+): (.*)$")
    return [(f"{m[1]}:{m[2]}", m[3]) for line in output.splitlines()
            if (m := pattern.match(line))]


def assert_errors(output: str, path: Path, expected: list[list[str]]) -> None:
    found = error_lines(output, path)
    assert len(found) == len(expected), output
    for at, phrase in expected:
        assert any(where == at and phrase in message for where, message in found), (
            f"expected {path.name}:{at} containing {phrase!r}, got:\n{output}")


# ----------------------------------------------------------------------------- corpus


@pytest.mark.parametrize("name", sorted(EXPECTED["single"]))
def test_broken_file_is_reported_at_its_line_and_column(name: str) -> None:
    path = BROKEN / name
    code, output = run("campaign", "validate", str(path))
    assert code == 1, output
    assert "Traceback" not in output
    assert_errors(output, path, EXPECTED["single"][name])
    assert "✓" not in output


@pytest.mark.parametrize("case", EXPECTED["together"], ids=lambda c: "+".join(c["files"]))
def test_duplicate_ids_are_caught_only_across_files(case: dict[str, Any]) -> None:
    paths = [BROKEN / name for name in case["files"]]
    for path in paths:  # each file alone is a valid campaign
        code, output = run("campaign", "validate", str(path))
        assert code == 0, output
    code, output = run("campaign", "validate", *map(str, paths))
    assert code == 1 and "Traceback" not in output
    for name, expected in case["errors"].items():
        assert_errors(output, BROKEN / name, expected)
        assert f"{paths[0]}:2:5" in output  # the message points at the first owner


def test_every_broken_file_has_expectations() -> None:
    covered = set(EXPECTED["single"]) | {f for c in EXPECTED["together"] for f in c["files"]}
    assert {p.name for p in BROKEN.glob("*.yaml")} == covered
    assert len(covered) >= 25


def test_messages_switch_to_english() -> None:
    path = BROKEN / "unknown-key-subject.yaml"
    code, output = run("--lang", "en", "campaign", "validate", str(path))
    assert code == 1
    assert f"{path}:13:5: unknown key 'subjek', did you mean 'subject'?" in output
    code, output = run("--lang", "en", "campaign", "validate", str(BROKEN / "tab-indentation.yaml"))
    assert "tab characters are not allowed" in output
    code, output = run("campaign", "validate", str(BROKEN / "empty-audience.yaml"))
    assert "audiens kosong" in output  # and back to Indonesian without --lang


def test_all_errors_of_a_file_are_collected_in_line_order(tmp_path: Path) -> None:
    path = tmp_path / "banyak.yaml"
    path.write_text(
        "version: 1\nid: Banyak_Galat\nname: Banyak\ntype: promotional\n"
        "schedule: {start: 2026-12-01 09:00}\n"
        "audience: {include: [{consent: marketing}]}\n"
        "offer: {kind: discount, percent: 150}\n"
        "channels:\n  email:\n    template: email/promotional.mjml\n"
        "    subject: \"{{ customer.nama }}\"\n    preheder: x\n",
        encoding="utf-8",
    )
    with pytest.raises(CampaignValidationError) as caught:
        load_campaign(path)
    errors = caught.value.errors
    assert [(e.line, e.column) for e in errors] == [(2, 5), (7, 34), (11, 14), (12, 5)]
    assert str(errors[0]).startswith(f"{path}:2:5: ")
    assert "apakah maksud Anda 'preheader'?" in errors[3].message


def test_missing_file_and_folder_arguments(tmp_path: Path) -> None:
    code, output = run("campaign", "validate", str(tmp_path / "tidak-ada.yaml"))
    assert code == 1 and "berkas tidak ditemukan" in output and "Traceback" not in output


# ----------------------------------------------------------------------------- examples


def _referenced_templates(path: Path) -> list[str]:
    channels = yaml.safe_load(path.read_text(encoding="utf-8"))["channels"]
    return [c["template"] for c in channels.values()  # an approved WhatsApp template is
            if isinstance(c, dict) and isinstance(c.get("template"), str)]  # no file


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_example_campaign_validates(path: Path) -> None:
    missing = sorted({t for t in _referenced_templates(path) if not template_exists(t)})
    errors = validate_files([path])[path]
    unexplained = [e for e in errors if not any(f"'{m}'" in e.message for m in missing)]
    assert not unexplained, "\n".join(map(str, unexplained))
    if missing:
        pytest.skip(f"templates not written yet: {', '.join(missing)}")
    code, output = run("campaign", "validate", str(path))
    assert code == 0 and f"✓ {path}" in output, output


def test_one_example_per_type_and_order_event() -> None:
    specs = [CampaignSpec.model_validate(yaml.safe_load(p.read_text(encoding="utf-8")))
             for p in EXAMPLES.glob("*.yaml")]
    assert {s.type for s in specs} == set(CAMPAIGN_TYPES)
    events = {s.trigger.event for s in specs if s.trigger and s.trigger.event}
    assert events == {"order_confirmed", "order_shipped", "order_invoiced"}
    assert len({s.id for s in specs}) == len(specs)


def test_promo_example_times_and_window_are_wita() -> None:
    spec = CampaignSpec.model_validate(
        yaml.safe_load((EXAMPLES / "promo-tenun-akhir-tahun-2026.yaml").read_text()))
    assert spec.zone.key == "Asia/Makassar"
    assert spec.start_utc() == datetime(2026, 12, 1, 1, 0, tzinfo=UTC)  # 09:00 WITA
    assert spec.in_send_window(datetime(2026, 12, 2, 0, 30, tzinfo=UTC))  # 08:30 WITA
    assert not spec.in_send_window(datetime(2026, 12, 2, 12, 30, tzinfo=UTC))  # 20:30 WITA
    assert spec.channel_names == ["email", "facebook", "instagram", "tiktok", "whatsapp"]


def test_newsletter_cron_runs_monthly_at_nine_wita() -> None:
    spec = CampaignSpec.model_validate(
        yaml.safe_load((EXAMPLES / "newsletter-bulanan.yaml").read_text()))
    after = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
    assert spec.next_cron_utc(after) == datetime(2026, 2, 1, 1, 0, tzinfo=UTC)
    assert spec.content and spec.content.trainings[0].date.utcoffset() is not None


# ----------------------------------------------------------------------------- spec shape


def test_storage_shape_equals_yaml_shape_and_round_trips() -> None:
    path = EXAMPLES / "promo-tenun-akhir-tahun-2026.yaml"
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    spec = CampaignSpec.model_validate(raw)
    assert spec.audience.model_dump(mode="json", exclude_none=True) == raw["audience"]
    stored = spec.to_storage()
    assert stored["schedule"]["send_window"] == {"from": "08:00", "to": "20:00"}
    again = CampaignSpec.model_validate(json.loads(json.dumps(stored)))
    assert spec_hash(again) == spec_hash(spec) and len(spec_hash(spec)) == 64
    raw["channels"]["email"]["subject"] = "Subjek lain untuk {{ customer.first_name }}"
    assert spec_hash(CampaignSpec.model_validate(raw)) != spec_hash(spec)


def test_kecamatan_is_stored_as_a_list_of_canonical_codes() -> None:
    raw = yaml.safe_load((EXAMPLES / "personalized-rekomendasi.yaml").read_text())
    raw["audience"]["include"].append({"kecamatan": "53.02.05"})
    spec = CampaignSpec.model_validate(raw)
    dumped = spec.audience.model_dump(mode="json", exclude_none=True)
    assert dumped["include"][-1] == {"kecamatan": ["53.02.05"]}
    assert dumped["include"][1] == {"any": [{"purchased_within_days": 365},
                                            {"engaged_within_days": 90}]}


def test_type_rules_also_guard_direct_model_validation() -> None:
    raw = yaml.safe_load((EXAMPLES / "transactional-order-confirmed.yaml").read_text())
    raw["audience"] = {"frequency_cap": {"max": 1, "per_days": 7}}
    with pytest.raises(ValidationError, match="frequency-capped"):
        CampaignSpec.model_validate(raw)


def test_yaml_12_times_and_naive_datetimes_in_campaign_zone(tmp_path: Path) -> None:
    """``to: 20:00`` unquoted is a time, not the YAML 1.1 integer 1200."""
    path = tmp_path / "jakarta.yaml"
    path.write_text(
        "version: 1\nid: promo-jakarta\nname: NO\ntype: promotional\n"
        "timezone: Asia/Jakarta\n"
        "schedule: {start: 2026-12-01 09:00, send_window: {from: 08:00, to: 20:00}}\n"
        "audience: {include: [{all: true}]}\n"
        "offer: {kind: new_product, title: Produk baru}\n"
        "channels: {email: {template: email/promotional.mjml, subject: Produk baru}}\n",
        encoding="utf-8",
    )
    spec = load_campaign(path)
    assert spec.name == "NO"
    assert spec.schedule.send_window and spec.schedule.send_window.to == "20:00"
    assert spec.start_utc() == datetime(2026, 12, 1, 2, 0, tzinfo=UTC)  # WIB = UTC+7
