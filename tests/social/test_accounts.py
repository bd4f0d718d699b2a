"""Social accounts: tokens encrypted and masked, reconnecting, atomic token rotation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

import engine.cli.accounts  # noqa: F401  (registers `umkm account`)
from engine.cli.app import app
from engine.config import Settings
from engine.db import get_engine
from engine.models import Delivery, DeliveryStatus, SocialAccount
from engine.social import accounts
from tests.factories import NOW, make_campaign, make_run

runner = CliRunner(env={"COLUMNS": "200"})
TOKEN = "EAABwzLixnjYBO-sangat-rahasia-token-halaman-0042"


def cli(*args: str, token: str | None = None) -> Any:
    """The CLI; ``token`` is typed at the hidden prompt (tokens are never arguments)."""
    return runner.invoke(app, list(args), input=None if token is None else token + "\n")


def test_connect_and_list_never_show_a_full_token(settings: Settings, db: Session) -> None:
    connected = cli("account", "connect", "facebook", "--id", "104857600",
                    "--name", "Dinas UMKM TTS", token=TOKEN)
    assert connected.exit_code == 0, connected.output
    assert "facebook:dinas" in connected.output and TOKEN not in connected.output

    listing = cli("account", "list")
    assert listing.exit_code == 0, listing.output
    assert TOKEN not in listing.output and TOKEN[:20] not in listing.output
    assert "EAAB…42" in listing.output  # enough to recognise which token it is
    row = db.scalars(select(SocialAccount)).one()
    assert TOKEN not in (row.access_token_enc or "")  # encrypted at rest
    assert accounts.credentials(row).access_token == TOKEN
    assert "sangat-rahasia" not in repr(accounts.credentials(row))


def test_connect_rejects_unknown_platforms_and_bad_input_without_traceback(
        settings: Settings) -> None:
    wrong = cli("account", "connect", "facebok", "--id", "1", "--name", "x", token="t")
    assert wrong.exit_code == 1
    assert "facebook, instagram, tiktok, whatsapp" in wrong.output
    assert "Traceback" not in wrong.output
    expiry = cli("account", "connect", "tiktok", "--id", "open-1", "--name", "x",
                 "--expires", "besok", token="act.1")
    assert expiry.exit_code == 1 and "besok" in expiry.output
    empty = cli("account", "connect", "tiktok", "--id", "open-1", "--name", "x", token=" ")
    assert empty.exit_code == 1 and "token akses wajib diisi" in empty.output


def _waiting(db: Session, key: str, recipient: str) -> Delivery:
    run = make_run(db, make_campaign(db))
    row = Delivery(run_id=run.id, channel="facebook", recipient=recipient,
                   status=DeliveryStatus.pending, context={"account": key},
                   next_attempt_at=NOW + timedelta(hours=1))
    db.add(row)
    db.flush()
    return row


def test_reconnect_clears_the_pause_and_wakes_only_that_accounts_posts(
        settings: Settings, db: Session) -> None:
    accounts.connect(db, platform="facebook", external_id="104857600", name="Dinas",
                     access_token=TOKEN)
    db.commit()
    accounts.mark_needs_reconnect(db, "facebook:dinas", "Meta: token kedaluwarsa (kode 190)")
    accounts.cool_down(db, "facebook:dinas", NOW + timedelta(minutes=30), "dibatasi")
    mine = _waiting(db, "facebook:dinas", "facebook:dinas:p1")
    other = _waiting(db, "facebook:biz-7", "facebook:biz-7:p2")
    db.commit()
    [view] = accounts.overview(db, NOW)
    assert view.status == accounts.STATUS_NEEDS_RECONNECT and view.cooling_until is not None

    reconnected = cli("account", "connect", "facebook", "--id", "104857600", "--name",
                      "Dinas", token="EAAB-token-baru-setelah-kedaluwarsa")
    assert reconnected.exit_code == 0, reconnected.output

    db.expire_all()
    row = accounts.by_key(db, "facebook:dinas")
    assert (row.status, row.cooldown_until) == (accounts.STATUS_OK, None)
    assert accounts.credentials(row).access_token == "EAAB-token-baru-setelah-kedaluwarsa"
    assert due_at(db, mine) is None  # due at the next tick
    assert due_at(db, other) == NOW + timedelta(hours=1)  # another account: untouched


def due_at(db: Session, row: Delivery) -> datetime | None:
    value = db.get(Delivery, row.id).next_attempt_at  # type: ignore[union-attr]
    return value if value is None or value.tzinfo else value.replace(tzinfo=UTC)


def test_store_tokens_writes_both_tokens_in_one_statement(settings: Settings,
                                                           db: Session) -> None:
    accounts.connect(db, platform="tiktok", external_id="open-1", name="umkm_tts",
                     access_token="act.lama", refresh_token="rft.lama")
    db.commit()
    accounts.mark_needs_reconnect(db, "tiktok:dinas", "token ditolak")
    statements: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("UPDATE"):
            statements.append(statement)

    engine = get_engine(settings)
    event.listen(engine, "before_cursor_execute", seen)
    try:
        accounts.store_tokens(db, "tiktok:dinas", "act.baru", "rft.baru", NOW)
    finally:
        event.remove(engine, "before_cursor_execute", seen)

    [update] = statements  # access and refresh token can never be half-written
    assert "access_token_enc" in update and "refresh_token_enc" in update
    db.expire_all()
    row = accounts.by_key(db, "tiktok:dinas")
    creds = accounts.credentials(row)
    assert (creds.access_token, creds.refresh_token) == ("act.baru", "rft.baru")
    assert row.status == accounts.STATUS_OK  # a working refresh ends the pause

    accounts.store_tokens(db, "tiktok:dinas", "act.ketiga", None, None)  # no rotation
    db.expire_all()
    creds = accounts.credentials(accounts.by_key(db, "tiktok:dinas"))
    assert (creds.access_token, creds.refresh_token) == ("act.ketiga", "rft.baru")
    with pytest.raises(accounts.AccountError):
        accounts.store_tokens(db, "tiktok:biz-404", "x", "y", None)
