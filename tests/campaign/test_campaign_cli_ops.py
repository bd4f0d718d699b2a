"""``umkm campaign plan|preview|launch|status|pause|resume|cancel`` in the embedded mode.

No SMTP_HOST: mail becomes ``.eml`` files under ``var/outbox/email``, exactly the bytes a
relay would get. Everything runs through Typer's CliRunner on the embedded SQLite.
"""

from __future__ import annotations

import email
import re
from collections.abc import Iterator
from datetime import timedelta
from email import policy
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner, Result

from engine.campaign.loader import load_campaign
from engine.cli import campaign_ops
from engine.cli.app import app
from engine.config import Settings, get_settings, reset_settings
from engine.db import session_factory
from engine.delivery import enqueue, scheduler
from engine.delivery.context import reset_process_state
from engine.delivery.enqueue import Batch
from engine.delivery.pipeline import BatchResult, process_batch
from engine.models import Campaign, CampaignRun, Delivery, utcnow
from engine.outbox import rows as outbox_rows
from tests.factories import (
    make_business,
    make_customer,
    make_optin,
    make_order,
    make_product,
    make_suppression,
)

runner = CliRunner(env={"COLUMNS": "200"})
LEFTOVER = re.compile(r"\{\{|\}\}|\{%|%\}|\{#|\[%|%\]|\[\[|\[#|</?mj-")

CAMPAIGN = """\
version: 1
id: promo-cli-uji
name: Promo Tenun Uji
type: promotional
schedule:
  start: {start}
audience:
  include: [{{consent: marketing}}, {{purchased_category: kerajinan_tangan}}]
products: {{opt_in: required, category: kerajinan_tangan, per_message: 2}}
offer: {{kind: discount, percent: 15, code: TENUN15}}
channels:
  email:
    template: email/promotional.mjml
    subject: "{{{{ customer.first_name }}}}, diskon {{{{ offer.percent }}}}% tenun ikat TTS"
"""
FUTURE_START = "2030-01-15 10:00"  # Selasa, 15 Januari 2030 10.00 WITA
PAST_START = "2026-01-05 09:00"


@pytest.fixture
def db(sqlite_settings: Settings) -> Iterator[Session]:
    """Shop, products and customers committed, so the CLI's own sessions see them."""
    reset_process_state()  # run ids restart at 1 in every fresh database
    session = session_factory(sqlite_settings)()
    shop = make_business(session, name="Tenun Ikat Nunkolo")
    kain = make_product(session, shop, name="Kain Tenun Buna", price=150_000)
    selendang = make_product(session, shop, name="Selendang Futus", price=85_000)
    make_product(session, shop, name="Tas Anyaman Lontar", price=60_000)  # not opted in
    for product in (kain, selendang):
        make_optin(session, product, "promo-cli-uji")
    since = utcnow() - timedelta(days=20)
    for name in ("Yohanes Tefa", "Maria Benu", "Agustinus Selan"):
        make_order(session, make_customer(session, name=name, marketing=True, at=since),
                   [kain], at=since)
    make_order(session, make_customer(session, name="Tanpa Izin"), [kain], at=since)
    blocked = make_customer(session, name="Sudah Berhenti", marketing=True, at=since)
    make_order(session, blocked, [kain], at=since)
    make_suppression(session, blocked.email or "")
    session.commit()
    yield session
    session.close()
    reset_process_state()


def umkm(*args: str) -> Result:
    result = runner.invoke(app, list(args))
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result


def campaign_file(tmp_path: Path, start: str, name: str = "kampanye.yaml") -> Path:
    path = tmp_path / name
    path.write_text(CAMPAIGN.format(start=start))
    return path


def count(db: Session, model: type) -> int:
    db.expire_all()
    return int(db.scalar(select(func.count()).select_from(model)) or 0)


def eml_files(settings: Settings) -> list[Path]:
    return sorted((Path(settings.var_dir) / "outbox" / "email").glob("*.eml"))


def test_plan_shows_audience_products_and_first_send_in_wita_and_sends_nothing(
    db: Session, sqlite_settings: Settings, tmp_path: Path
) -> None:
    result = umkm("campaign", "plan", str(campaign_file(tmp_path, FUTURE_START)))
    assert result.exit_code == 0, result.output
    out = result.output
    # 4 match (the consent rule is part of them), the unsubscribed one is removed.
    assert re.search(r"Cocok dengan aturan audiens\s+│\s*4", out), out
    assert re.search(r"Dikeluarkan: daftar tekan \(berhenti/bounce\)\s+│\s*-1", out), out
    assert re.search(r"Penerima email\s+│\s*3", out), out
    assert "Kirim pertama: Selasa, 15 Januari 2030 10.00 WITA" in out
    assert "Produk UMKM yang ikut (2):" in out
    assert "Kain Tenun Buna — Rp 150.000 (Tenun Ikat Nunkolo)" in out
    assert "Selendang Futus — Rp 85.000" in out
    assert "Tas Anyaman Lontar" not in out
    assert "Per kanal: email: 3" in out
    assert "Tidak ada yang dikirim (hanya rencana)." in out
    assert count(db, Delivery) == 0 and count(db, CampaignRun) == 0
    assert eml_files(sqlite_settings) == []


def test_preview_writes_html_and_text_of_real_recipients(
    db: Session, tmp_path: Path
) -> None:
    out_dir = tmp_path / "pratinjau"
    result = umkm("campaign", "preview", str(campaign_file(tmp_path, FUTURE_START)),
                  "--out", str(out_dir), "-n", "2")
    assert result.exit_code == 0, result.output
    assert "4 pratinjau ditulis ke" in result.output
    html_files = sorted(out_dir.glob("*.html"))
    text_files = sorted(out_dir.glob("*.txt"))
    assert [p.stem for p in html_files] == [p.stem for p in text_files]
    assert [p.name for p in html_files] == ["01-yohanes-tefa-A.html", "02-maria-benu-A.html"]
    for html_path, text_path, first_name in zip(html_files, text_files, ("Yohanes", "Maria"),
                                                strict=True):
        html, text = html_path.read_text(), text_path.read_text()
        for part in (html, text):
            assert not LEFTOVER.search(part), LEFTOVER.search(part)
            assert f"Halo {first_name}," in part
            assert "Rp 150.000" in part or "Rp 85.000" in part
        assert text.startswith(f"Subjek: {first_name}, diskon 15% tenun ikat TTS\n")
        assert html.startswith("<!doctype html>")
    assert count(db, Delivery) == 0


def test_launch_embedded_writes_one_eml_per_recipient_and_relaunch_creates_nothing(
    db: Session, sqlite_settings: Settings, tmp_path: Path
) -> None:
    path = campaign_file(tmp_path, PAST_START)
    result = umkm("campaign", "launch", str(path))
    assert result.exit_code == 0, result.output
    assert "Putaran 1 dibuat: 3 penerima di kotak keluar." in result.output
    assert re.search(r"berjalan|selesai", result.output)
    files = eml_files(sqlite_settings)
    assert len(files) == 3
    recipients = set()
    for file in files:
        message = email.message_from_bytes(file.read_bytes(), policy=policy.default)
        recipients.add(message["To"].addresses[0].display_name)
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert "diskon 15% tenun ikat TTS" in str(message["Subject"])
    assert recipients == {"Yohanes Tefa", "Maria Benu", "Agustinus Selan"}
    sent = {d.recipient: d.status.value for d in db.scalars(select(Delivery))}
    assert list(sent.values()) == ["sent"] * 3

    again = umkm("campaign", "launch", str(path))
    assert again.exit_code == 0, again.output
    assert "sudah diluncurkan (putaran 1); tidak dibuat ulang" in again.output
    assert eml_files(sqlite_settings) == files
    assert count(db, Delivery) == 3 and count(db, CampaignRun) == 1

    status = umkm("campaign", "status", "promo-cli-uji")
    assert status.exit_code == 0, status.output
    assert "Promo Tenun Uji · putaran 1 · selesai" in status.output
    assert re.search(r"menunggu\s+┃\s+sedang dikirim\s+┃\s+terkirim\s+┃\s+gagal\s+┃\s+dilewati",
                     status.output), status.output
    assert re.search(r"0\s+│\s+0\s+│\s+3\s+│\s+0\s+│\s+0", status.output), status.output


def _refuse(*_args: object, **_kwargs: object) -> None:
    raise AssertionError("every row marked a second time")


def _no_second_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    """A launch that inserted its rows handed over must never mark them again."""
    monkeypatch.setattr(outbox_rows, "enqueue_due", _refuse)
    monkeypatch.setattr(campaign_ops, "due_batches_for_run", _refuse)


def _handed_at_insert(db: Session) -> list[int]:
    """Ids of the run's rows, each marked handed over by the insert itself (at start)."""
    db.expire_all()
    run = db.scalars(select(CampaignRun)).one()
    rows = list(db.scalars(select(Delivery).order_by(Delivery.id)))
    assert rows and all(row.enqueued_at == run.started_at for row in rows)
    return [row.id for row in rows]


def test_launch_now_embedded_hands_rows_over_at_insert_and_sends_each_once(
    db: Session, sqlite_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _no_second_pass(monkeypatch)
    processed: list[int] = []

    def recording(run_id: int, ids: list[int]) -> BatchResult:
        processed.extend(ids)
        return process_batch(run_id, ids)

    monkeypatch.setattr(campaign_ops, "process_batch", recording)
    result = umkm("campaign", "launch", str(campaign_file(tmp_path, PAST_START)))
    assert result.exit_code == 0, result.output
    assert processed == _handed_at_insert(db)
    assert len(eml_files(sqlite_settings)) == 3
    assert [d.status.value for d in db.scalars(select(Delivery))] == ["sent"] * 3


def _broker_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")  # never reached: see below
    reset_settings()


def test_launch_now_with_a_broker_enqueues_the_inserted_ids_after_commit(
    db: Session, sqlite_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from workers import tasks

    _no_second_pass(monkeypatch)
    _broker_mode(monkeypatch)
    sent: list[list[int]] = []
    committed: list[bool] = []

    def enqueue(batches: list[Batch]) -> int:
        with session_factory(get_settings())() as other:  # the launch is visible to workers
            committed.append(other.scalar(select(func.count()).select_from(Delivery)) == 3)
        sent.extend(b.delivery_ids for b in batches)
        return len(batches)

    monkeypatch.setattr(tasks, "enqueue_batches", enqueue)
    monkeypatch.setattr(tasks.dispatch_run, "delay", _refuse)
    result = umkm("campaign", "launch", str(campaign_file(tmp_path, PAST_START)))
    assert result.exit_code == 0, result.output
    assert [i for ids in sent for i in ids] == _handed_at_insert(db)
    assert committed == [True] * len(sent)
    assert eml_files(sqlite_settings) == []  # the workers send, not this process


def test_launch_now_whose_broker_is_down_leaves_the_rows_to_the_sweeper(
    db: Session, sqlite_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from workers import tasks

    _broker_mode(monkeypatch)

    def down(_batches: list[Batch]) -> int:
        raise ConnectionError("broker down")

    monkeypatch.setattr(tasks, "enqueue_batches", down)
    result = runner.invoke(app, ["campaign", "launch", str(campaign_file(tmp_path, PAST_START))])
    assert isinstance(result.exception, ConnectionError)
    ids = _handed_at_insert(db)
    settings = get_settings()
    assert enqueue.sweep(settings, utcnow()) == []  # still trusted to the broker
    later = utcnow() + timedelta(seconds=settings.enqueue_grace_seconds + 1)
    assert [i for b in enqueue.sweep(settings, later) for i in b.delivery_ids] == ids


def test_pause_resume_cancel_of_a_scheduled_run(
    db: Session, sqlite_settings: Settings, tmp_path: Path
) -> None:
    launched = umkm("campaign", "launch", str(campaign_file(tmp_path, FUTURE_START)))
    assert launched.exit_code == 0, launched.output
    assert "Dijadwalkan Selasa, 15 Januari 2030 10.00 WITA" in launched.output

    paused = umkm("campaign", "pause", "promo-cli-uji")
    assert paused.exit_code == 0 and "Putaran 1 dijeda." in paused.output
    status = umkm("campaign", "status", "1")
    assert "putaran 1 · dijeda" in status.output
    assert "Alasan: dijeda oleh petugas" in status.output
    twice = umkm("campaign", "pause", "promo-cli-uji")
    assert twice.exit_code == 1
    assert "Putaran 1 tidak sedang berjalan/terjadwal (dijeda)." in twice.output

    # Paused before its start time: resuming puts it back on schedule, it sends nothing.
    resumed = umkm("campaign", "resume", "promo-cli-uji")
    assert resumed.exit_code == 0, resumed.output
    assert "Putaran 1 dilanjutkan." in resumed.output
    assert "Dijadwalkan Selasa, 15 Januari 2030 10.00 WITA" in resumed.output
    assert eml_files(sqlite_settings) == []
    assert "putaran 1 · terjadwal" in umkm("campaign", "status", "promo-cli-uji").output
    not_paused = umkm("campaign", "resume", "promo-cli-uji")
    assert not_paused.exit_code == 1 and "tidak sedang dijeda (terjadwal)" in not_paused.output

    cancelled = umkm("campaign", "cancel", "promo-cli-uji")
    assert cancelled.exit_code == 0, cancelled.output
    assert "Putaran 1 dibatalkan; 3 pengiriman tertunda dilewati." in cancelled.output
    db.expire_all()
    assert {d.status.value for d in db.scalars(select(Delivery))} == {"skipped"}
    assert db.scalars(select(Campaign)).one().active is False
    assert "putaran 1 · dibatalkan" in umkm("campaign", "status", "promo-cli-uji").output
    assert eml_files(sqlite_settings) == []


def test_resume_of_a_running_run_sends_the_rest_once(
    db: Session, sqlite_settings: Settings, tmp_path: Path
) -> None:
    spec = load_campaign(campaign_file(tmp_path, PAST_START))
    run = scheduler.launch(db, spec, None).run  # outbox filled, nobody sent it yet
    assert run is not None and run.status.value == "running"
    assert umkm("campaign", "pause", str(run.id)).exit_code == 0
    resumed = umkm("campaign", "resume", str(run.id))
    assert resumed.exit_code == 0, resumed.output
    assert "Putaran 1 dilanjutkan." in resumed.output
    assert len(eml_files(sqlite_settings)) == 3
    assert "putaran 1 · selesai" in resumed.output
    # Cancelling a finished run keeps it finished; only the trigger is switched off.
    done = umkm("campaign", "cancel", str(run.id))
    assert "Putaran 1 sudah selesai; pemicu kampanye dinonaktifkan." in done.output
    assert "putaran 1 · selesai" in umkm("campaign", "status", str(run.id)).output


def test_cancel_deactivates_a_trigger_campaign_that_never_fired(
    db: Session, tmp_path: Path
) -> None:
    path = Path(__file__).resolve().parents[2] / "campaigns" / \
        "transactional-order-confirmed.yaml"
    launched = umkm("campaign", "launch", str(path))
    assert "Kampanye transaksi-pesanan-dikonfirmasi aktif" in launched.output
    cancelled = umkm("campaign", "cancel", "transaksi-pesanan-dikonfirmasi")
    assert cancelled.exit_code == 0, cancelled.output
    assert "Kampanye transaksi-pesanan-dikonfirmasi dinonaktifkan" in cancelled.output
    db.expire_all()
    assert db.scalars(select(Campaign)).one().active is False


def test_unknown_run_is_a_clear_error(db: Session) -> None:
    for command in ("status", "pause", "resume", "cancel"):
        result = umkm("campaign", command, "tidak-ada")
        assert result.exit_code == 1
        assert "Kampanye atau putaran 'tidak-ada' tidak ditemukan." in result.output


@pytest.mark.parametrize("command", ["plan", "preview", "launch"])
def test_invalid_yaml_exits_1_with_file_line_column(
    db: Session, sqlite_settings: Settings, tmp_path: Path, command: str
) -> None:
    path = tmp_path / "rusak.yaml"
    path.write_text(CAMPAIGN.format(start=PAST_START).replace("audience:", "audiens:"))
    result = umkm("campaign", command, str(path))
    assert result.exit_code == 1, result.output
    assert f"{path} tidak valid:" in result.output
    assert re.search(rf"{re.escape(str(path))}:7:1: .*audiens.*audience", result.output), \
        result.output
    assert count(db, Delivery) == 0 and eml_files(sqlite_settings) == []
