"""``umkm campaign sync``: files become revisions (author ``git:<file>``), ``--export``
writes the newest revisions back, and a change on both sides since the last sync is a
conflict that writes nothing and loses nothing (issue 18)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select
from typer.testing import CliRunner, Result

from engine.campaign import revisions, sync
from engine.cli.app import app
from engine.config import Settings
from engine.db import session_factory
from engine.models import AuditLog, CampaignRevision
from web.studio_check import starter_text

runner = CliRunner(env={"COLUMNS": "200"})
TEXT = starter_text("newsletter")
KEY = "contoh-buletin"


def _sync(folder: Path, *extra: str) -> Result:
    return runner.invoke(app, ["campaign", "sync", str(folder), *extra])


def _rows(settings: Settings) -> list[tuple[int, str, str]]:
    with session_factory(settings)() as session:
        return [(r.number, r.author, r.yaml_text) for r in session.scalars(
            select(CampaignRevision).order_by(CampaignRevision.number))]


def _browser_save(settings: Settings, text: str) -> None:
    with session_factory(settings)() as session:
        revisions.save(session, KEY, text, "staf")
        session.commit()


def test_round_trip_file_to_revision_and_back(settings: Settings, tmp_path: Path) -> None:
    file = tmp_path / "buletin.yaml"
    file.write_text(TEXT, encoding="utf-8")
    first = _sync(tmp_path)
    assert first.exit_code == 0, first.output
    assert "diimpor sebagai revisi 1" in first.output
    assert _rows(settings) == [(1, "git:buletin.yaml", TEXT)]
    assert "sudah sama" in _sync(tmp_path).output and len(_rows(settings)) == 1
    # The file changes in git: a new revision.
    edited = TEXT.replace("Kabar UMKM TTS Bulanan", "Kabar UMKM TTS Maret")
    file.write_text(edited, encoding="utf-8")
    assert "revisi 2" in _sync(tmp_path).output
    # The browser saves revision 3; import leaves it alone, --export writes it.
    browser = edited.replace("Kabar UMKM TTS Maret", "Kabar UMKM TTS April")
    _browser_save(settings, browser)
    told = _sync(tmp_path)
    assert told.exit_code == 0 and "--export" in told.output
    assert file.read_text(encoding="utf-8") == edited
    out = _sync(tmp_path, "--export")
    assert out.exit_code == 0 and "ditulis dari revisi 3" in out.output
    assert file.read_text(encoding="utf-8") == browser
    assert "sudah sama" in _sync(tmp_path).output and len(_rows(settings)) == 3
    # A campaign that exists only in the studio gets a file of its own on export.
    with session_factory(settings)() as session:
        revisions.save(session, "kampanye-baru", TEXT.replace(KEY, "kampanye-baru"), "staf")
        session.commit()
    assert _sync(tmp_path, "--export").exit_code == 0
    assert (tmp_path / "kampanye-baru.yaml").read_text(encoding="utf-8").startswith("#")


def test_a_change_on_both_sides_is_a_conflict_that_writes_nothing(
        settings: Settings, tmp_path: Path) -> None:
    file = tmp_path / "buletin.yaml"
    file.write_text(TEXT, encoding="utf-8")
    assert _sync(tmp_path).exit_code == 0
    browser = TEXT.replace("Kabar UMKM TTS Bulanan", "Kabar dari peramban")
    _browser_save(settings, browser)
    in_git = TEXT.replace("Kabar UMKM TTS Bulanan", "Kabar dari git")
    file.write_text(in_git, encoding="utf-8")
    for extra in ((), ("--export",)):
        result = _sync(tmp_path, *extra)
        assert result.exit_code == 1
        text = " ".join(result.output.split())
        assert f"Konflik pada kampanye {KEY}" in text
        assert "revisi 1" in text and "revisi 2" in text
        assert "Tidak ada yang ditulis" in text
        assert file.read_text(encoding="utf-8") == in_git  # the file is untouched
        assert _rows(settings) == [(1, "git:buletin.yaml", TEXT), (2, "staf", browser)]
    with session_factory(settings)() as session:
        conflict = sync.open_conflict(session, KEY)
        assert conflict is not None and "Konflik pada kampanye" in sync.conflict_message(conflict)
        assert session.scalars(select(AuditLog.action).where(
            AuditLog.action == sync.CONFLICT_ACTION)).all() == [sync.CONFLICT_ACTION] * 2
    # Resolved by hand (the file takes the browser's text): the next sync goes through.
    file.write_text(browser, encoding="utf-8")
    assert _sync(tmp_path).exit_code == 0
    with session_factory(settings)() as session:
        assert sync.open_conflict(session, KEY) is None
    with session_factory(settings)() as session:
        revisions.save(session, KEY, browser + "# lagi\n", "staf")
        session.commit()
    assert _sync(tmp_path, "--export").exit_code == 0
    assert file.read_text(encoding="utf-8") == browser + "# lagi\n"
