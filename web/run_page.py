"""One run's page (``/dinas/run/<id>``): its revision, what went out, what is held
back, when it stopped, progress per message, and pause / resume / cancel (issue 18).

Why the counts come from delivery rows: a batch says what was handed to a worker, a
row says what happened to one message; ``sent``, ``held back`` and ``per message`` are
grouped over ``delivery`` (the same rows ``umkm campaign status`` counts). The page
refreshes through ``/dinas/run/<id>/progress.json`` and ``/static/run.js``; without
scripts it is still complete at load.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.common.errors import NotFound
from engine.common.formatting import jam, tanggal
from engine.common.i18n import t
from engine.delivery import control
from engine.models import AuditLog, CampaignRevision, CampaignRun, Delivery, User, utcnow
from web.auth import SessionRoute, csrf_protect, get_db, page, require_staff
from web.dashboard import delivery_label, status_label

router = APIRouter(prefix="/dinas/run", route_class=SessionRoute,
                   dependencies=[Depends(csrf_protect), Depends(require_staff)])

HELD = ("pending", "sending")


def _run(db: Session, run_id: str) -> CampaignRun:
    run = db.get(CampaignRun, int(run_id)) if run_id.isdigit() and len(run_id) < 19 else None
    if run is None:
        raise NotFound("auth.not_found")
    return run


def per_message(db: Session, run_id: int) -> list[dict[str, Any]]:
    """Counts by message (channel and A/B variant) and state, from the delivery rows."""
    rows: dict[tuple[str, str], dict[str, int]] = {}
    for channel, variant, status, count in db.execute(
            select(Delivery.channel, Delivery.variant, Delivery.status, func.count())
            .where(Delivery.run_id == run_id)
            .group_by(Delivery.channel, Delivery.variant, Delivery.status)).tuples():
        key = (str(channel), str(variant or "A"))
        rows.setdefault(key, {})[str(getattr(status, "value", status))] = int(count)
    return [{"channel": c, "variant": v, "counts": n, "total": sum(n.values()),
             "done": sum(n.get(k, 0) for k in ("sent", "failed", "skipped")),
             "label": " · ".join(f"{delivery_label(k)} {x}" for k, x in sorted(n.items()))}
            for (c, v), n in sorted(rows.items())]


def run_json(db: Session, run: CampaignRun) -> dict[str, Any]:
    """What the page shows, refreshed by ``run.js``."""
    report = control.status_report(db, run, utcnow())
    waiting = report.waiting
    stopped = waiting.last_sent_at if waiting and report.status in (
        "paused", "cancelled", "finished") else None
    return {"id": run.id, "status": report.status, "status_label": status_label(report.status),
            "sent": report.counts.get("sent", 0),
            "held": sum(report.counts.get(k, 0) for k in HELD),
            "failed": report.counts.get("failed", 0),
            "skipped": report.counts.get("skipped", 0),
            "done": report.done, "total": report.total,
            "stopped_at": f"{tanggal(stopped)} {jam(stopped)}" if stopped else "",
            "reason": report.reason or "", "messages": per_message(db, run.id)}


@router.get("/{run_id}", response_class=HTMLResponse)
def run_page(request: Request, run_id: str, msg: str = "",
             db: Session = Depends(get_db)) -> HTMLResponse:
    run = _run(db, run_id)
    revision = db.get(CampaignRevision, run.revision_id) if run.revision_id else None
    data = run_json(db, run)
    return page(request, "dinas_run.html", {
        "run": run, "data": data, "revision": revision, "message": msg[:300],
        "campaign_name": control.status_report(db, run).campaign_name})


@router.get("/{run_id}/progress.json")
def run_progress(run_id: str, db: Session = Depends(get_db)) -> JSONResponse:
    return JSONResponse(run_json(db, _run(db, run_id)), headers={"Cache-Control": "no-store"})


@router.post("/{run_id}/batal")
def cancel_run(run_id: str, user: User = Depends(require_staff),
               db: Session = Depends(get_db)) -> Response:
    """Stop for good: pending rows become ``skipped`` (kept); a finished run stays so."""
    run = _run(db, run_id)
    live = run.status.value in ("scheduled", "running", "paused")
    n = control.cancel(db, run, t("studio.run.cancel_reason", user=user.username)) if live else 0
    db.add(AuditLog(actor=user.username, action="run.cancel", entity="campaign_run",
                    entity_id=str(run.id), detail={"ok": live, "skipped": n}))
    db.commit()
    message = t("studio.run.cancelled", run=run.id, n=n) if live else \
        t("studio.run.not_cancelled", run=run.id, status=status_label(run.status.value))
    return RedirectResponse(f"/dinas/run/{run.id}?" + urlencode({"msg": message}),
                            status_code=303)
