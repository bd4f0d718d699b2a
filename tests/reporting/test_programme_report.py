"""Pasal 8 and 9 in the monitoring report: training participation and guidance figures
appear in the HTML document, the web report and the CLI table, with the same numbers
and Indonesian labels, only for a period that has any (issue 20)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

from sqlalchemy.orm import Session
from typer.testing import CliRunner

from engine.cli.app import app
from engine.models import Business, RegistrationSource, Role
from engine.reporting.html import render_report_html
from engine.umkm import guidance, trainings
from tests.web_helpers import World, make_user

runner = CliRunner(env={"COLUMNS": "200"})
PERIOD = "2026-11"
HELD = datetime(2026, 11, 10, 1, tzinfo=UTC)  # 09.00 WITA, 10 November 2026


def seed_programmes(db: Session, a: Business, b: Business) -> None:
    """Two November trainings (A twice, B once; A came once, B came) and three guidance
    requests: legalitas from A answered after 2 h and 7 h, pemasaran from B never."""
    first = trainings.create_training(db, topic="Foto produk", trainer="Dinas", capacity=5,
                                      starts_at=HELD, place="Aula", actor="t")
    second = trainings.create_training(db, topic="Pembukuan", trainer="Bank NTT", capacity=5,
                                       starts_at=HELD + timedelta(days=5), place="Aula",
                                       actor="t")
    early = HELD - timedelta(days=7)
    for training, business in ((first, a), (second, a), (first, b)):
        trainings.register(db, training.id, business, source=RegistrationSource.portal,
                           actor="t", now=early)
    trainings.record_attendance(db, first.id, a.id, True, actor="t")
    trainings.record_attendance(db, second.id, a.id, False, actor="t")
    trainings.record_attendance(db, first.id, b.id, True, actor="t")
    helper = make_user(db, "pendamping-lap", Role.pendamping)
    asked = datetime(2026, 11, 3, 1, tzinfo=UTC)
    for text, hours in (("NIB", 2), ("PIRT", 7)):
        request = guidance.create_request(db, a, "legalitas", text, actor="t")
        request.created_at = asked
        guidance.assign(db, request, helper, actor="t")
        request.assigned_at = asked + timedelta(hours=hours)
        guidance.log_session(db, request, helper, held_on=date(2026, 11, 4),
                             duration_minutes=30, notes="Isi OSS")
    guidance.create_request(db, b, "pemasaran", "Toko daring", actor="t").created_at = asked
    db.flush()


def _world_seed(world: World) -> None:
    with world.session() as db:
        a, b = db.get(Business, world.ids["business_a"]), db.get(Business, world.ids["business_b"])
        assert a is not None and b is not None
        seed_programmes(db, a, b)
        db.commit()


def _table(html: str, key: str) -> list[list[str]]:
    body = html.split(f'data-programme="{key}"', 1)[1].split("</table>", 1)[0]
    return [re.findall(r"<td>(.*?)</td>", row) for row in re.findall(r"<tr.*?</tr>", body)
            if "<td>" in row]


def test_html_report_has_training_and_guidance_tables(world: World) -> None:
    _world_seed(world)
    with world.session() as db:
        html = render_report_html(db, PERIOD, "campaign")
        quiet = render_report_html(db, "2026-10", "campaign")
    assert '<section id="programmes">' in html
    assert "Pelatihan dan pendampingan (Pasal 8 dan 9)" in html
    assert "2 pelatihan, 3 pendaftaran, 2 hadir." in html
    assert _table(html, "training-kecamatan") == [
        ["Kota Soe", "2", "1", "2"], ["Mollo Utara", "1", "1", "1"], ["Total", "3", "2", "2"]]
    assert _table(html, "training-business") == [
        ["Tenun Ina A", "Kota Soe", "2", "1", "2"], ["Madu Hutan B", "Mollo Utara", "1", "1", "1"]]
    topics = {row[0]: row[1:] for row in _table(html, "guidance-topic")}
    assert topics["Legalitas"] == ["2", "2", "0", "4,5"]  # median of 2 h and 7 h
    assert topics["Pemasaran"] == ["1", "0", "1", "–"]
    assert topics["Manajemen"] == ["0", "0", "0", "–"]
    assert topics["Total"] == ["3", "2", "1", "–"]
    assert _table(html, "guidance-kecamatan")[:2] == [
        ["Kota Soe", "2", "2", "0", "4,5"], ["Mollo Utara", "1", "0", "1", "–"]]
    assert '<section id="programmes">' not in quiet  # October had neither


def test_web_report_shows_the_same_section(world: World) -> None:
    _world_seed(world)
    page = world.client("staf").get(f"/dinas/laporan?periode={PERIOD}&by=kecamatan")
    assert page.status_code == 200
    assert '<section id="programmes">' in page.text
    assert _table(page.text, "training-kecamatan")[-1] == ["Total", "3", "2", "2"]
    assert "Median tanggapan pertama (jam)" in page.text
    guidance_page = world.client("staf").get(f"/dinas/pendampingan?periode={PERIOD}").text
    assert '<td class="num">4,5</td>' in guidance_page  # Indonesian decimal comma
    assert "4.5" not in guidance_page


def test_cli_table_prints_programme_tables_only_when_there_are_any(world: World) -> None:
    _world_seed(world)
    result = runner.invoke(app, ["report", "--period", PERIOD])
    assert result.exit_code == 0, result.output
    assert "Partisipasi pelatihan per kecamatan, November 2026" in result.output
    assert "Partisipasi pelatihan per UMKM, November 2026" in result.output
    assert "Pendampingan per bidang, November 2026" in result.output
    assert "Pendampingan per kecamatan, November 2026" in result.output
    line = next(x for x in result.output.splitlines() if x.strip().startswith("Legalitas"))
    assert line.split() == ["Legalitas", "2", "2", "0", "4,5"]
    quiet = runner.invoke(app, ["report", "--period", "2026-10"])
    assert quiet.exit_code == 0, quiet.output
    assert "Partisipasi pelatihan" not in quiet.output
    assert "Pendampingan per" not in quiet.output
