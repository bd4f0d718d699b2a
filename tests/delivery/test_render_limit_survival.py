"""Issue 13: a template that blows a limit only for one recipient fails that one row.

The bomb sits in a branch the sample context of ``campaign validate`` never takes
(``customer.first_name == 'Zed'``), so only the real send meets it.  The batch must
send everyone else, record the one delivery as permanently failed with the limit's
reason, and the process (the caller of ``process_batch``) must carry on.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.campaign.loader import load_campaign
from engine.config import Settings
from engine.delivery.context import reset_process_state
from engine.delivery.pipeline import process_batch
from engine.delivery.scheduler import upsert_campaign
from engine.models import CampaignRun, Delivery, DeliveryStatus, RunStatus
from tests.factories import make_customer, make_delivery
from tests.smtp_server import ScriptedSMTPServer

ROOT = Path(__file__).resolve().parents[2]
BOMB = "{% if customer.first_name == 'Zed' %}{{ '{:>200000000}'.format(1) }}{% endif %}"


def _run_with_subject(db: Session, subject: str) -> CampaignRun:
    spec = load_campaign(ROOT / "campaigns" / "newsletter-bulanan.yaml")
    spec.schedule.send_window = None  # the test may run at any hour
    assert spec.email is not None
    spec.email.subject = subject
    campaign = upsert_campaign(db, spec, None)
    run = CampaignRun(campaign_id=campaign.id, trigger_key="uji", status=RunStatus.running)
    db.add(run)
    db.flush()
    return run


def test_a_limit_hit_by_one_recipient_fails_only_that_delivery(
        db: Session, settings: Settings, smtp_server: ScriptedSMTPServer) -> None:
    run = _run_with_subject(db, BOMB + "Kabar UMKM bulan ini")
    zed = make_customer(db, marketing=True, name="Zed Tallo")
    others = [make_customer(db, marketing=True, name=n) for n in ("Ani Benu", "Budi Nope")]
    planned = [make_delivery(db, run, c, status="pending") for c in (others[0], zed, others[1])]
    db.commit()

    smtp = dataclasses.replace(settings, smtp_host=smtp_server.host, smtp_port=smtp_server.port)
    try:
        result = process_batch(run.id, [d.id for d in planned], smtp)
        again = process_batch(run.id, [d.id for d in planned], smtp)  # still alive, idempotent
    finally:
        reset_process_state()

    assert (result.sent, result.failed, result.retried) == (2, 1, 0)
    assert again.claimed == 0
    assert sorted(smtp_server.recipients()) == sorted(str(c.email) for c in others)
    db.expire_all()
    rows = {d.customer_id: d for d in db.scalars(select(Delivery).where(Delivery.run_id == run.id))}
    failed = rows[zed.id]
    assert failed.status == DeliveryStatus.failed
    assert failed.error and "template:" in failed.error and "200000000" in failed.error
    assert {rows[c.id].status for c in others} == {DeliveryStatus.sent}
