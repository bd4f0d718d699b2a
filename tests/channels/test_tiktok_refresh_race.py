"""Two workers refreshing the same TikTok account at once (refresh tokens rotate).

Each thread plays one Celery worker: its own adapter, built from the credentials both
loaded from the database before the access token expired, and its own sessions through
:class:`engine.social.publish.DbSocialHooks`.  Only one of them may spend the refresh token: the
other must take the rotated set from the database.  Before the fix the second one sent
the spent token, got ``invalid_grant`` and the account was marked "needs reconnect"
although nothing was wrong with it (Dinas staff had to redo OAuth).
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from channels.base import OutboundMessage, SendResult, SendStatus
from channels.tiktok import TikTokChannel
from engine.config import Settings
from engine.db import session_factory
from engine.models import Delivery
from engine.social import accounts
from engine.social.publish import DbSocialHooks
from tests.factories import make_campaign, make_run
from tests.fake_http import Recorded, Reply
from tests.fake_tiktok import (
    CLIENT_KEY,
    CLIENT_SECRET,
    OAUTH_TOKEN,
    FakeTikTok,
)
from tests.fake_tiktok import fake_tiktok_fixture as fake_tiktok_fixture

ACCOUNT = "tiktok:dinas"
WORKERS = 2
# Long enough that the second worker asks while the first one still holds the lock.
SLOW_REFRESH_SECONDS = 0.3


def _connect_expired(db: Session, fake: FakeTikTok) -> tuple[str, str]:
    """The Dinas account, connected earlier; its access token has just expired."""
    access, refresh = fake.issue_tokens()
    accounts.connect(db, platform="tiktok", external_id="fake-open-id", name="umkm_tts",
                     access_token=access, refresh_token=refresh,
                     expires_at=datetime.now(UTC) - timedelta(minutes=5))
    db.commit()
    fake.expire(access)
    return access, refresh


def _deliveries(db: Session, count: int) -> tuple[int, list[int]]:
    """One pending TikTok post per worker (checkpoints need real delivery rows)."""
    run = make_run(db, make_campaign(db))
    rows = [Delivery(run_id=run.id, channel="tiktok", recipient=f"{ACCOUNT}:p{n}",
                     context={"account": ACCOUNT}) for n in range(count)]
    db.add_all(rows)
    db.commit()
    return run.id, [row.id for row in rows]


def _worker_adapter(sessions: sessionmaker[Session], fake: FakeTikTok,
                    run_id: int) -> TikTokChannel:
    """What ``engine.social.publish.send_social`` builds in each worker process."""
    with sessions() as session:
        credentials = accounts.credentials(accounts.by_key(session, ACCOUNT))
    return TikTokChannel(credentials, hooks=DbSocialHooks(sessions, "tiktok", run_id),
                         base_url=fake.url, client_key=CLIENT_KEY, client_secret=CLIENT_SECRET,
                         sleep=lambda _s: None, poll_interval=0.01, timeout=10.0)


def _post(adapter: TikTokChannel, sessions: sessionmaker[Session], delivery_id: int,
          start: threading.Barrier) -> SendResult:
    """Post one photo; an auth failure pauses the account, as ``publish._settle`` does."""
    message = OutboundMessage(delivery_id, ACCOUNT, {
        "caption": f"Tenun ikat Mollo nomor {delivery_id}", "media_type": "image",
        "media_url": f"https://umkm.example/media/{delivery_id}.jpg"}, account=ACCOUNT)
    start.wait(timeout=10)
    with adapter:
        result = adapter.send(message)
    if result.status is SendStatus.AUTH:
        with sessions() as session:
            accounts.mark_needs_reconnect(session, ACCOUNT, result.error or "auth")
    return result


def test_two_workers_refreshing_the_same_account_spend_the_refresh_token_once(
    settings: Settings, db: Session, fake_tiktok: FakeTikTok,
) -> None:
    old_access, old_refresh = _connect_expired(db, fake_tiktok)
    run_id, delivery_ids = _deliveries(db, WORKERS)
    sessions = session_factory(settings)
    adapters = [_worker_adapter(sessions, fake_tiktok, run_id) for _ in range(WORKERS)]

    def slow_refresh(request: Recorded) -> Reply:
        time.sleep(SLOW_REFRESH_SECONDS)
        return fake_tiktok.handle(request)

    fake_tiktok.enqueue(OAUTH_TOKEN, slow_refresh)
    start = threading.Barrier(WORKERS)
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        futures = [pool.submit(_post, adapter, sessions, delivery_id, start)
                   for adapter, delivery_id in zip(adapters, delivery_ids, strict=True)]
        results = [future.result(timeout=60) for future in futures]

    assert [r.status for r in results] == [SendStatus.SENT] * WORKERS, \
        [r.error for r in results]
    assert fake_tiktok.count(OAUTH_TOKEN) == 1
    assert fake_tiktok.used_refresh_tokens == [old_refresh]
    assert len(fake_tiktok.publishes) == WORKERS
    db.expire_all()
    account = accounts.by_key(db, ACCOUNT)
    assert account.status == accounts.STATUS_OK
    assert "last_error" not in (account.meta or {})
    stored = accounts.credentials(account)
    assert stored.access_token != old_access and stored.refresh_token != old_refresh
    assert stored.access_token in fake_tiktok.access_tokens
    assert stored.refresh_token in fake_tiktok.refresh_tokens  # the rotated one, still valid
    # every API call after the one refresh carried the new access token
    bearers = {r.bearer for r in fake_tiktok.requests if r.path != OAUTH_TOKEN}
    assert bearers == {stored.access_token}
