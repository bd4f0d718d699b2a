"""The Dinas dashboard (``/dinas``): campaigns and runs, verification, share kits, accounts.

Staff only (``dinas_staff`` and ``dinas_admin``); owners get 403. Run progress comes from
:mod:`engine.delivery.control` (the same numbers as ``umkm campaign status``) and refreshes itself
through a small JSON endpoint polled by ten lines of vanilla JavaScript, so the page
stays usable without scripts. Pause and resume are database states the workers honour
within one batch. Social tokens are never read, let alone shown.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.campaign.catalog import eligible_products
from engine.campaign.schema import CampaignSpec, Offer, Products
from engine.common.errors import BadRequest, NotFound
from engine.common.formatting import WITA, jam
from engine.common.i18n import t
from engine.config import Settings
from engine.db import session_factory
from engine.delivery import control, owner_notice
from engine.delivery.context import utm
from engine.models import (
    AuditLog,
    Business,
    Campaign,
    CampaignRun,
    CampaignType,
    Product,
    SocialAccount,
    User,
    Verification,
    utcnow,
)
from engine.reporting.build import run_figures
from engine.reporting.metrics import format_metric, metric_label
from engine.social.kit_links import dashboard_kit_track
from engine.social.sharekit import ShareKit, build_share_kit
from engine.umkm import wilayah
from engine.umkm.eligibility import Verdict
from web.auth import (
    SessionRoute,
    csrf_protect,
    get_db,
    page,
    require_admin,
    require_staff,
    settings_of,
)
from web.pages import verdict_of

RECENT_RUNS = 30
# The run figures on the dashboard and campaign page: report metrics, one name each.
RUN_METRICS = ("sent", "unique_opens", "unique_clicks", "social_clicks", "whatsapp_clicks",
               "leads", "unsubscribes")
TOKEN_WARN_DAYS = 7



# --- campaigns and runs ----------------------------------------------------------------------


@dataclass
class RunView:
    report: control.RunStatusReport
    campaign_id: int
    engagement: dict[str, str]

    @property
    def counts_label(self) -> str:
        """``terkirim 120 · menunggu 30`` in the page's language."""
        return " · ".join(f"{delivery_label(k)} {n}"
                          for k, n in sorted(self.report.counts.items()) if n)

    @property
    def waiting_label(self) -> str:
        """What waits and until when (a backoff, a lease), and when a stopped run stopped."""
        w = self.report.waiting
        if w is None:
            return ""
        parts = []
        if w.retry and w.next_retry_at is not None:
            parts.append(t("dash.run.waiting_retry", n=w.retry, at=jam(w.next_retry_at),
                           error=w.retry_error or "-"))
        if w.leased and w.lease_expires_at is not None:
            parts.append(t("dash.run.leased", n=w.leased, at=jam(w.lease_expires_at)))
        if w.last_sent_at is not None and self.report.status in ("paused", "cancelled"):
            parts.append(t("dash.run.stopped_at", at=jam(w.last_sent_at)))
        return " · ".join(parts)

    def as_json(self) -> dict[str, Any]:
        r = self.report
        return {"id": r.run_id, "status": r.status, "status_label": status_label(r.status),
                "counts": r.counts, "counts_label": self.counts_label,
                "waiting_label": self.waiting_label, "done": r.done,
                "total": r.total, "planned": r.planned,
                "rate_per_minute": r.rate_per_minute,
                "errors": [{"error": e, "count": n} for e, n in r.errors],
                "engagement": self.engagement}


def status_label(status: str) -> str:
    key = f"dash.status.{status}"
    return t(key) if status in {"scheduled", "running", "paused", "finished",
                                "cancelled"} else status


def delivery_label(status: str) -> str:
    known = {"pending", "sending", "sent", "failed", "skipped"}
    return t(f"dash.delivery.{status}") if status in known else status


def engagement_by_run(db: Session, run_ids: list[int]) -> dict[int, dict[str, str]]:
    """Each run's figures from the report builder, formatted (``1.234``) for the page.

    Why not count events here: a platform snapshot is an event of type ``click`` too, and
    a second count would drift from the report; :func:`run_figures` is the report itself.
    """
    figures = run_figures(db, run_ids)
    return {rid: {m: format_metric(m, values[m]) for m in RUN_METRICS}
            for rid, values in figures.items()}


def recent_runs(db: Session, campaign_id: int | None = None,
                limit: int = RECENT_RUNS) -> list[RunView]:
    query = select(CampaignRun).order_by(CampaignRun.id.desc()).limit(limit)
    if campaign_id is not None:
        query = query.where(CampaignRun.campaign_id == campaign_id)
    runs = list(db.scalars(query))
    engagement = engagement_by_run(db, [r.id for r in runs])
    return [RunView(control.status_report(db, run), run.campaign_id, engagement[run.id])
            for run in runs]


def _run_or_404(db: Session, run_id: int) -> CampaignRun:
    run = db.get(CampaignRun, run_id)
    if run is None:
        raise NotFound("auth.not_found")
    return run


# --- share kit ------------------------------------------------------------------


@dataclass(frozen=True)
class _KitSpec:
    """What the share kit reads of a campaign spec: its tags, product filters and offer."""

    tags: list[str]
    products: Products
    offer: Offer | None


def _kit_spec(campaign: Campaign) -> _KitSpec | None:
    """The typed spec parts a share kit needs; ``None`` when they cannot be read.

    A stored spec is validated again (:meth:`CampaignSpec.from_storage`), but a row written
    by an older schema (or a partial test spec) may no longer pass as a whole; then its
    ``products`` and ``offer`` blocks are read one by one, absent ones taking their defaults
    (the campaign's tags, every opted-in product, no offer), so the kit still shows what it
    can. Product filters that do not validate give no kit: guessing them could offer a
    product the campaign does not carry.
    """
    stored = dict(campaign.spec or {})
    try:
        spec = CampaignSpec.from_storage(stored)
    except ValidationError:
        try:
            products = Products.model_validate(stored.get("products") or {})
        except ValidationError:
            return None
        try:
            offer = Offer.model_validate(stored["offer"]) if stored.get("offer") else None
        except ValidationError:
            offer = None
        return _KitSpec(list(campaign.tags or []), products, offer)
    return _KitSpec(spec.tags or list(campaign.tags or []), spec.products or Products(),
                    spec.offer)


def share_kit(db: Session, campaign: Campaign, settings: Settings) -> ShareKit | None:
    """The WhatsApp share kit of a campaign, built from its live catalogue.

    The products are chosen exactly as a send would choose them (the campaign's product
    filters through :func:`engine.campaign.catalog.eligible_products`), so staff forward what the
    campaign would carry right now; ``None`` when there is nothing to offer.
    """
    if campaign.type == CampaignType.transactional:
        return None
    spec = _kit_spec(campaign)
    if spec is None:  # a spec stored by an older schema: show no kit rather than fail
        return None
    products = spec.products
    catalog = eligible_products(
        db, campaign_key=campaign.key, campaign_tags=spec.tags, opt_in=products.opt_in,
        category=products.category, kecamatan=products.kecamatan,
        max_price=products.max_price, featured=products.featured or (),
    )
    if not catalog:
        return None
    offer = (spec.offer.model_dump(mode="json", by_alias=True, exclude_none=True)
             if spec.offer else None)
    base_url = settings.base_url
    track = dashboard_kit_track(db, session_factory(settings), campaign.id, base_url,
                                _kit_utm(campaign))
    return build_share_kit({"id": campaign.key, "name": campaign.name},
                           [p.as_context(base_url) for p in catalog], offer, base_url, track)


def _kit_utm(campaign: Campaign) -> dict[str, str | None]:
    """The campaign's UTM values on WhatsApp (``utm.medium: "{{ channel }}"`` -> whatsapp)."""
    try:
        return utm(CampaignSpec.from_storage(campaign.spec), "whatsapp")
    except ValidationError:  # an older stored spec: the essentials only
        return {"utm_medium": "whatsapp", "utm_campaign": campaign.key}


# --- social accounts -------------------------------------------------------------------------


@dataclass(frozen=True)
class AccountHealth:
    platform: str
    name: str
    owner: str
    status: str
    problems: tuple[str, ...]
    expires_at: datetime | None


def _aware(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; they are UTC like everything stored."""
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def account_health(db: Session, now: datetime | None = None) -> list[AccountHealth]:
    """Status, cool-down and token expiry of every account; the token columns are not read."""
    now = now or utcnow()
    rows = db.execute(select(
        SocialAccount.platform, SocialAccount.name, SocialAccount.owner,
        SocialAccount.business_id, SocialAccount.status, SocialAccount.cooldown_until,
        SocialAccount.token_expires_at,
    ).order_by(SocialAccount.platform, SocialAccount.id)).tuples()
    result = []
    for platform, name, owner, business_id, status, cooldown, expires in rows:
        problems: list[str] = []
        cooldown, expires = _aware(cooldown), _aware(expires)
        if cooldown is not None and cooldown > now:
            until = cooldown.astimezone(WITA).strftime("%d-%m-%Y %H.%M WITA")
            problems.append(t("dash.cooling", until=until))
        if expires is not None:
            if expires <= now:
                problems.append(t("dash.token_expired"))
            elif expires - now <= timedelta(days=TOKEN_WARN_DAYS):
                problems.append(t("dash.token_expiring", days=max(1, (expires - now).days)))
        owner_label = owner if business_id is None else f"{owner} #{business_id}"
        result.append(AccountHealth(platform, name, owner_label, status, tuple(problems),
                                    expires))
    return result


# --- verification ----------------------------------------------------------------------------


# Both need an admin's decision: new registrations and businesses whose identity changed.
AWAITING = (Verification.pending, Verification.changed)


@dataclass(frozen=True)
class QueueItem:
    business: Business
    verdict: Verdict
    kecamatan: str
    products: int


def verification_queue(db: Session, state: Verification) -> list[QueueItem]:
    counts = dict(db.execute(
        select(Product.business_id, func.count()).group_by(Product.business_id)).tuples().all())
    items = []
    for business in db.scalars(select(Business).where(Business.verification == state)
                               .order_by(Business.created_at, Business.id).limit(200)):
        verdict = verdict_of(business)
        kecamatan = wilayah.kecamatan_name(business.kecamatan_code) or business.kecamatan_code
        items.append(QueueItem(business, verdict, kecamatan, int(counts.get(business.id, 0))))
    return items


# --- routes ----------------------------------------------------------------------------------

router = APIRouter(prefix="/dinas", route_class=SessionRoute,
                   dependencies=[Depends(csrf_protect), Depends(require_staff)])


@router.get("", response_class=HTMLResponse)
def home(request: Request, msg: str = "", db: Session = Depends(get_db)) -> HTMLResponse:
    campaigns = list(db.scalars(select(Campaign).order_by(Campaign.updated_at.desc(),
                                                          Campaign.id.desc()).limit(100)))
    names = {c.id: c.name for c in campaigns}
    runs = recent_runs(db)
    for run in runs:
        if run.campaign_id not in names:
            names[run.campaign_id] = run.report.campaign_name
    pending = db.scalar(select(func.count()).select_from(Business)
                        .where(Business.verification.in_(AWAITING))) or 0
    return page(request, "dinas_home.html", {
        "campaigns": campaigns, "runs": runs, "event_types": RUN_METRICS,
        "metric_label": metric_label,
        "status_label": status_label, "message": msg[:200], "pending": int(pending),
    })


@router.get("/progress.json")
def progress(db: Session = Depends(get_db)) -> JSONResponse:
    return JSONResponse({"runs": [r.as_json() for r in recent_runs(db)]},
                        headers={"Cache-Control": "no-store"})


@router.post("/run/{run_id}/jeda")
def pause_run(run_id: int, kembali: str = Form(""), user: User = Depends(require_staff),
              db: Session = Depends(get_db)) -> Response:
    run = _run_or_404(db, run_id)
    ok = control.pause(db, run, t("dash.pause_reason", user=user.username))
    db.add(AuditLog(actor=user.username, action="run.pause", entity="campaign_run",
                    entity_id=str(run.id), detail={"ok": ok}))
    db.commit()
    key = "dash.paused" if ok else "dash.not_paused"
    return _back_to_home(t(key, run=run.id, status=status_label(run.status.value)),
                         run.id if kembali == "run" else None)


@router.post("/run/{run_id}/lanjut")
def resume_run(run_id: int, kembali: str = Form(""), user: User = Depends(require_staff),
               db: Session = Depends(get_db)) -> Response:
    run = _run_or_404(db, run_id)
    ok = control.resume(db, run)  # pending rows become due; the sweeper re-enqueues them
    db.add(AuditLog(actor=user.username, action="run.resume", entity="campaign_run",
                    entity_id=str(run.id), detail={"ok": ok}))
    db.commit()
    key = "dash.resumed" if ok else "dash.not_resumed"
    return _back_to_home(t(key, run=run.id, status=status_label(run.status.value)),
                         run.id if kembali == "run" else None)


def _back_to_home(message: str, run_id: int | None = None) -> Response:
    """To the dashboard, or back to the run's own page when its buttons were used."""
    where = f"/dinas/run/{run_id}" if run_id is not None else "/dinas"
    return RedirectResponse(f"{where}?" + urlencode({"msg": message}), status_code=303)


@router.get("/kampanye/{campaign_id}", response_class=HTMLResponse)
def campaign_detail(request: Request, campaign_id: int,
                    db: Session = Depends(get_db)) -> HTMLResponse:
    campaign = db.get(Campaign, campaign_id)
    if campaign is None:
        raise NotFound("auth.not_found")
    return page(request, "dinas_campaign.html", {
        "campaign": campaign, "runs": recent_runs(db, campaign.id, limit=10),
        "event_types": RUN_METRICS, "metric_label": metric_label, "status_label": status_label,
        "kit": share_kit(db, campaign, settings_of(request)),
    })


@router.get("/verifikasi", response_class=HTMLResponse)
def verification(request: Request, status: str = "pending", msg: str = "",
                 db: Session = Depends(get_db)) -> HTMLResponse:
    try:
        state = Verification(status)
    except ValueError:
        state = Verification.pending
    return page(request, "dinas_verification.html", {
        "items": verification_queue(db, state), "state": state.value,
        "states": [v.value for v in Verification], "message": msg[:200],
    })


@router.post("/usaha/{business_id}/verifikasi")
def verify_business(
    request: Request, business_id: int,
    action: str = Form(""), binaan: str = Form(""), binaan_group: str = Form(""),
    note: str = Form(""),
    user: User = Depends(require_admin), db: Session = Depends(get_db),
) -> Response:
    """Approve or reject: a ``dinas_admin`` decision; staff see the queue read-only."""
    business = db.get(Business, business_id)
    if business is None:
        raise NotFound("auth.not_found")
    if action not in ("approve", "reject"):
        raise BadRequest("dash.bad_action")
    approve = action == "approve"
    owner_notice.decide_and_notify(db, settings_of(request), business, approve=approve,
                                   binaan=bool(binaan), group=binaan_group or None, note=note,
                                   actor=user.username)
    message = t("dash.approved" if approve else "dash.rejected", name=business.name)
    return RedirectResponse("/dinas/verifikasi?" + urlencode({"msg": message}),
                            status_code=303)


@router.get("/akun-sosial", response_class=HTMLResponse)
def social_accounts(request: Request, db: Session = Depends(get_db)) -> HTMLResponse:
    return page(request, "dinas_accounts.html", {"accounts": account_health(db)})
