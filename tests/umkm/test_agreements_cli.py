"""``umkm kesepakatan`` and ``umkm pengawasan`` (Pasal 13-14 from the command line): the
services' rules with their Indonesian sentences, and the records the pages show."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from typer.testing import CliRunner

from engine.cli.app import app
from engine.config import Settings
from engine.db import session_scope
from engine.models import Agreement, Complaint, ComplaintFollowUp
from engine.reporting.periods import local_now_date
from tests.web_helpers import NIK_A, make_eligible_business

runner = CliRunner(env={"COLUMNS": "200"})


def umkm(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    assert "Traceback" not in result.output, result.output
    return result.exit_code, result.output


def test_agreements_from_the_cli(sqlite_settings: Settings) -> None:
    code, out = umkm("kesepakatan", "list")
    assert code == 0 and "Belum ada kesepakatan." in out
    soon = (local_now_date() + timedelta(days=10)).isoformat()
    code, out = umkm("kesepakatan", "add", "--provider", "Lokapasar Uji", "--kind", "lokapasar",
                     "--start", "2026-01-01", "--end", soon, "--parties", "Pemda; PT Uji")
    assert code == 0, out
    assert "Kesepakatan #1 dicatat: Lokapasar Uji, berlaku Kamis, 1 Januari 2026 sampai" in out
    code, out = umkm("kesepakatan", "add", "--provider", "Kurir", "--kind", "bank",
                     "--start", "2026-01-01", "--end", "2026-12-31")
    assert code != 0 and "Jenis layanan bank tidak dikenal" in out
    code, out = umkm("kesepakatan", "add", "--provider", "Kurir", "--kind", "kurir",
                     "--start", "31-12-2026", "--end", "2027-12-31")
    assert code != 0 and "Tanggal 31-12-2026 tidak sah; tulis mis. 2026-12-31." in out
    code, out = umkm("kesepakatan", "list")
    assert code == 0 and "Lokapasar Uji" in out and "Lokapasar" in out and " 10 " in out
    code, out = umkm("kesepakatan", "reminders")
    assert code == 0 and "1 pengingat baru dicatat" in out and "Lokapasar Uji" in out
    code, out = umkm("kesepakatan", "reminders")
    assert "0 pengingat baru dicatat" in out  # once per agreement
    with session_scope() as db:
        assert db.scalars(select(Agreement)).one().reminded_at is not None


def test_complaints_from_the_cli(sqlite_settings: Settings) -> None:
    with session_scope() as db:
        business, _ = make_eligible_business(db, "Tenun A", NIK_A)
        bid = business.id
    code, out = umkm("pengawasan", "add", "--text", "Kemasan rusak", "--business", str(bid))
    assert code == 0 and "Pengaduan #1 dicatat (tentang UMKM Tenun A)." in out
    code, out = umkm("pengawasan", "add", "--text", "x", "--business", str(bid),
                     "--agreement", "9")
    assert code != 0 and "Pilih tepat satu: sebuah UMKM atau sebuah kesepakatan." in out
    code, out = umkm("pengawasan", "follow-up", "1", "--note", "Ditelepon", "--status",
                     "selesai")
    assert code == 0 and "Tindak lanjut pengaduan #1 dicatat; status: Selesai." in out
    code, out = umkm("pengawasan", "follow-up", "1", "--note", "x", "--status", "tutup")
    assert code != 0 and "Status tutup tidak dikenal" in out
    code, out = umkm("pengawasan", "list", "--status", "selesai")
    assert code == 0 and "Kemasan rusak" in out and "Keluhan" in out and "Selesai" in out
    code, out = umkm("pengawasan", "list", "--status", "open")
    assert "Belum ada pengaduan." in out
    with session_scope() as db:
        assert db.scalars(select(Complaint)).one().status == "selesai"
        assert db.scalars(select(ComplaintFollowUp)).one().author.startswith("cli")
