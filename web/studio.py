"""The campaign studio for Dinas staff: list, starter gallery, YAML editor, preview.

Why campaigns stay YAML in the browser: the file is the campaign (``umkm campaign
validate|plan|launch`` read it), so the studio edits the same text with the same checks
(:mod:`web.studio_check`) instead of a form that could express something else. Staff and
admins only (the router's ``require_staff``); every POST carries the session's CSRF token
like the other dashboard forms, and its body is bounded (``MAX_BODY_BYTES``, a 413 in
Indonesian from :mod:`web.limits`). The JSON answers are for ``web/static/studio.js``.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse
from sqlalchemy.orm import Session

from engine.campaign import review, revisions, sync
from engine.campaign.schema import CampaignSpec
from engine.common.errors import BadRequest, NotFound
from engine.common.i18n import t
from engine.delivery import trial_send
from engine.models import AuditLog, CampaignRevision, User
from web.auth import SessionRoute, csrf_protect, get_db, page, require_staff, settings_of
from web.headers import CONTENT_SECURITY_POLICY
from web.studio_check import (
    STARTERS,
    check_json,
    error_json,
    preview_json,
    starter_text,
    validate,
    yaml_of,
)
from web.studio_list import FIGURES, STATUSES, TYPES, campaign_page, parse_query, type_label
from web.studio_list import campaign_status_label as status_label

router = APIRouter(prefix="/dinas/kampanye", route_class=SessionRoute,
                   dependencies=[Depends(csrf_protect), Depends(require_staff)])

NO_STORE = {"Cache-Control": "no-store"}
# The preview frames are ``sandbox=""`` srcdoc documents (no scripts, no forms, an opaque
# origin) that inherit this page's policy: emails need inline styles, nothing else.
EDITOR_CSP = CONTENT_SECURITY_POLICY.replace("style-src 'self'",
                                             "style-src 'self' 'unsafe-inline'")


def _filters(jenis: str, status: str) -> dict[str, object]:
    return {"types": [(v, type_label(v)) for v in TYPES],
            "statuses": [(v, status_label(v)) for v in STATUSES],
            "jenis": jenis[:40], "status": status[:40]}


@router.get("", response_class=HTMLResponse)
def campaign_list(request: Request, jenis: str = "", status: str = "", halaman: str = "",
                  periode: str = "", db: Session = Depends(get_db)) -> HTMLResponse:
    """Every campaign with its figures; a bad filter is explained above the table (400)."""
    context: dict[str, object] = {**_filters(jenis, status), "periode": periode[:40],
                                  "figures": FIGURES, "error": None, "listing": None}
    try:
        query = parse_query(jenis, status, halaman, periode)
    except BadRequest as exc:
        context["error"] = str(exc)
        return page(request, "studio_list.html", context, status_code=400)
    context.update(listing=campaign_page(db, query), periode=query.period)
    return page(request, "studio_list.html", context)


@router.get("/baru", response_class=HTMLResponse)
def new_campaign(request: Request, contoh: str = "", revisi: str = "",
                 db: Session = Depends(get_db)) -> HTMLResponse:
    """The starter gallery, or the editor opened on a starter or a saved revision."""
    if revisi:
        return _edit_revision(request, db, revisi)
    if not contoh:
        return page(request, "studio_gallery.html", {
            "starters": [(name, t(f"studio.starter.{name}"),
                          t(f"studio.starter.{name}.about")) for name in STARTERS]})
    try:
        text = starter_text(contoh)
    except BadRequest as exc:
        return page(request, "studio_gallery.html", {"error": str(exc), "starters": []},
                    status_code=400)
    return _editor(request, text, t(f"studio.starter.{contoh}"))


def _editor(request: Request, text: str, label: str,
            revision: CampaignRevision | None = None) -> HTMLResponse:
    """The editor; opened on a sent-back revision it shows the reviewer's note."""
    note = revision.review_note if revision is not None \
        and revision.review == review.RETURNED else None
    return page(request, "studio_editor.html", {
        "yaml": text, "starter_label": label, "trial_channels": trial_send.CHANNELS,
        "trial_label": trial_send.label, "note": note,
        "reviewer": revision.reviewer if revision is not None else None},
        headers={"Content-Security-Policy": EDITOR_CSP, **NO_STORE})


def _edit_revision(request: Request, db: Session, revisi: str) -> HTMLResponse:
    row = db.get(CampaignRevision, int(revisi)) if revisi.isdigit() and len(revisi) < 19 \
        else None
    if row is None:
        raise NotFound("studio.no_revision", value=revisi[:40])
    return _editor(request, row.yaml_text,
                   t("studio.revision_label", key=row.campaign_key, number=row.number), row)


def _bad(exc: BadRequest) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=400, headers=NO_STORE)


@router.post("/periksa")
def check(request: Request, yaml: str = Form(""),
          db: Session = Depends(get_db)) -> JSONResponse:
    """Validate the editor's text as ``umkm campaign validate`` does; plan when valid."""
    try:
        text = yaml_of(yaml)
    except BadRequest as exc:
        return _bad(exc)
    return JSONResponse(check_json(db, settings_of(request), text), headers=NO_STORE)


def valid_spec(request: Request, db: Session, yaml: str,
                fix_key: str) -> tuple[CampaignSpec, str] | JSONResponse:
    """(spec, text) of the editor's text, or the JSON answer that says what is wrong:
    a 400 for an oversized text, else the problems to fix first (``fix_key``)."""
    try:
        text = yaml_of(yaml)
    except BadRequest as exc:
        return _bad(exc)
    spec, errors = validate(db, settings_of(request), text, media=False)
    if spec is None:
        return JSONResponse({"ok": False, "errors": [error_json(e) for e in errors],
                             "error": t(fix_key)}, headers=NO_STORE)
    return spec, text


@router.post("/pratinjau")
def preview(request: Request, yaml: str = Form(""), penerima: str = Form(""),
            db: Session = Depends(get_db)) -> JSONResponse:
    """Email, posts and share kit for a recipient of the audience (or the sample)."""
    if penerima and not (penerima.isdigit() and len(penerima) < 19):
        return _bad(BadRequest("studio.bad_recipient", value=penerima[:40]))
    checked = valid_spec(request, db, yaml, "studio.fix_first")
    if isinstance(checked, JSONResponse):
        return checked
    return JSONResponse(preview_json(db, checked[0], int(penerima) if penerima else None),
                        headers=NO_STORE)


@router.post("/simpan")
def save(request: Request, yaml: str = Form(""), user: User = Depends(require_staff),
         db: Session = Depends(get_db)) -> JSONResponse:
    """Save the editor's text as the campaign's next revision (a valid campaign only)."""
    checked = valid_spec(request, db, yaml, "studio.fix_before_save")
    if isinstance(checked, JSONResponse):
        return checked
    spec, text = checked
    revision, new = revisions.save(db, spec.id, text, user.username)
    if new:
        db.add(AuditLog(actor=user.username, action="campaign.save",
                        entity="campaign_revision", entity_id=str(revision.id),
                        detail={"campaign": spec.id, "number": revision.number}))
    db.commit()
    key = "studio.saved" if new else "studio.unchanged"
    return JSONResponse({"ok": True, "new": new, "number": revision.number,
                         "url": f"/dinas/kampanye/revisi/{spec.id}",
                         "message": t(key, number=revision.number)}, headers=NO_STORE)


@router.get("/revisi/{campaign_key}", response_class=HTMLResponse)
def revision_history(request: Request, campaign_key: str, msg: str = "",
                     db: Session = Depends(get_db)) -> HTMLResponse:
    """Every saved revision of one campaign, newest first, each diffed with the one before,
    with its review state (the newest can be submitted) and an open sync conflict."""
    views = revisions.history(db, campaign_key[:120])
    if not views:
        raise NotFound("studio.no_revisions", key=campaign_key[:120])
    conflict = sync.open_conflict(db, campaign_key[:120])
    return page(request, "studio_revisions.html", {
        "key": campaign_key, "views": views, "state_label": review.state_label,
        "can_submit": views[0].revision.review in (review.DRAFT, review.RETURNED),
        "conflict": sync.conflict_message(conflict) if conflict else None,
        "message": msg[:300]})
