"""The demo's pipeline stages after seeding: launch the example campaigns, let the
scheduler tick once, send through the Celery tasks (executed in this process), and show
where every message and post went. Each stage returns Rich-markup lines.

The tasks are the production ones (``workers.tasks.send_batch``), applied eagerly: the
embedded default needs no broker, and nothing here is a simplified second code path.

The demo's clock: run at night, the example campaigns would only wait for their send
window (08.00-20.00 WITA) and the demo would show nothing. So every stage runs at the
next moment all example windows are open (now, during the day) and says so.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.markup import escape
from sqlalchemy import func, select, update

from channels import ChannelKind, channel_names
from engine.campaign.loader import check_files
from engine.campaign.schema import CampaignSpec
from engine.campaign.window import in_send_window, next_window_open
from engine.common.formatting import jam, tanggal
from engine.common.i18n import t
from engine.db import session_scope
from engine.delivery import beat, scheduler
from engine.delivery.enqueue import due_batches_for_run
from engine.demo.history import HISTORY_NOTE
from engine.models import Campaign, CampaignRun, Delivery, DeliveryStatus, SocialPost, utcnow

_LAST: dict[str, Any] = {}


def launch_examples(campaign_dir: Path) -> list[str]:
    """Launch every valid example campaign (idempotent: a second demo creates nothing)."""
    lines: list[str] = []
    files = sorted(campaign_dir.glob("*.yaml"))
    checked = check_files(files)
    now = _LAST["clock"] = demo_clock([s for s, _ in checked.values() if s])
    if now > utcnow():
        lines.append(t("dp.clock", when=f"{tanggal(now)} {jam(now)}"))
    with session_scope() as session:
        for path, (spec, _errors) in checked.items():
            if spec is None:
                lines.append(t("dp.invalid", file=escape(path.name)))
                continue
            # The demo sends one-off campaigns now (`campaign launch --now`), so every
            # channel shows output today; triggered ones wait for their trigger.
            result = scheduler.launch(session, spec, str(path), now, start_now=True)
            if result.activated_only or result.run is None:
                lines.append(t("dp.active", id=spec.id, type=spec.type))
            elif result.run.status.value == "scheduled":
                when = result.run.scheduled_at
                lines.append(t("dp.scheduled", id=spec.id, when=f"{tanggal(when)} {jam(when)}"))
            else:
                lines.append(t("dp.launched", id=spec.id, run=result.run.id,
                               n=result.planned, status=t(f"dp.status.{result.run.status.value}")))
    return lines


def demo_clock(specs: list[CampaignSpec], now: datetime | None = None) -> datetime:
    """``now``, or the first moment after it when every example's send window is open."""
    clock = now or utcnow()
    for _ in range(len(specs) + 1):  # each step only moves forward to a window opening
        closed = [s for s in specs if not in_send_window(s, clock)]
        if not closed:
            return clock
        clock = max(next_window_open(s, clock) for s in closed)
    return clock


def tick_and_send() -> list[str]:
    """One pass of every beat job (triggers, sweeper) at the demo's clock, and every due
    batch through the production task (applied here: the demo needs no broker)."""
    import engine.reporting.monthly  # noqa: F401  (its beat job joins run_all)
    from workers.tasks import send_batch

    clock: datetime = _LAST.get("clock") or utcnow()
    retry_held_back_now(clock)
    reports = beat.run_all(now=clock)
    batches = beat.batches_of(reports)
    with session_scope() as session:
        running = list(session.scalars(select(CampaignRun.id).where(
            CampaignRun.status == "running")))
    seen = {(b.run_id, tuple(b.delivery_ids)) for b in batches}
    for run_id in running:
        for batch in due_batches_for_run(run_id, now=clock):
            if (batch.run_id, tuple(batch.delivery_ids)) not in seen:
                batches.append(batch)
    for batch in batches:
        send_batch.apply(args=(batch.run_id, batch.delivery_ids),
                         kwargs={"at": clock.isoformat()})
    _LAST["tasks"] = len(batches)
    counts = _delivery_counts()
    return [t("dp.tick", orders=reports["order_triggers"].count,
              retention=reports["retention_scan"].count,
              recurring=reports["recurring_runs"].count),
            t("dp.sent", sent=counts["sent"], failed=counts["failed"],
              skipped=counts["skipped"], pending=counts["pending"] + counts["sending"])]


def retry_held_back_now(clock: datetime) -> int:
    """Rows a failed write held back are due again at this run of the demo.

    The demo has no worker that comes back after the backoff: the person running it
    again (after freeing disk space) is the signal to retry, at once.
    """
    with session_scope() as session:
        result = session.execute(
            update(Delivery)
            .where(Delivery.status == DeliveryStatus.pending, Delivery.error.is_not(None),
                   Delivery.next_attempt_at > clock)
            .values(next_attempt_at=clock)
            .execution_options(synchronize_session=False))
        return int(getattr(result, "rowcount", 0) or 0)


def held_back() -> tuple[int, str | None]:
    """Rows still pending after an error once the demo sent everything due: how many,
    and their most common error (a full disk says ``No space left on device``)."""
    with session_scope() as session:
        rows = session.execute(
            select(Delivery.error, func.count())
            .where(Delivery.status == DeliveryStatus.pending, Delivery.error.is_not(None))
            .group_by(Delivery.error).order_by(func.count().desc())).all()
    return sum(int(n) for _, n in rows), (str(rows[0][0]) if rows else None)


def _delivery_counts() -> Counter[str]:
    """Outbox rows per status, the seeded year of past runs ("riwayat demo") left out."""
    history = select(CampaignRun.id).where(CampaignRun.status_reason == HISTORY_NOTE)
    with session_scope() as session:
        rows = session.execute(select(Delivery.status, func.count())
                               .where(Delivery.run_id.not_in(history))
                               .group_by(Delivery.status))
        counts: Counter[str] = Counter()
        for status, n in rows:
            counts[str(getattr(status, "value", status))] = int(n)
    for key in ("sent", "failed", "skipped", "pending", "sending"):
        counts.setdefault(key, 0)
    return counts


def where_it_went(var_dir: Path, smtp_host: str, smtp_port: int) -> list[str]:
    lines = [t("dp.tasks", n=_LAST.get("tasks", 0))]
    if smtp_host:
        lines.append(t("dp.mail_to_smtp", host=smtp_host, port=smtp_port))
    else:
        lines.append(t("dp.mail_to_files", path=var_dir / "outbox" / "email"))
    return lines


def social_outputs(var_dir: Path) -> list[str]:
    lines = []
    outbox = var_dir / "outbox"
    for channel in channel_names(ChannelKind.POST, plugins=False):
        folder = outbox / channel
        n = len(list(folder.glob("*.json"))) if folder.is_dir() else 0
        lines.append(t("dp.social", channel=channel, n=n, path=folder))
    with session_scope() as session:
        kits = session.scalars(select(SocialPost).where(SocialPost.platform == "whatsapp")).all()
        if kits:
            lines.append(t("dp.sharekit", path=outbox / "whatsapp"))
        names = dict(session.execute(select(Campaign.id, Campaign.key)).tuples().all())
    _ = names
    return lines


def web_hint() -> list[str]:
    return [t("dp.web")]
