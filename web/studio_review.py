"""Four eyes in the studio: submit a revision, the admin's review queue, approve and
launch or send back with a note, and the editor's test send (issue 18).

Why here and not in :mod:`web.studio`: the editor module stays about editing. The rules
are the engine's (:mod:`engine.campaign.review`, :func:`engine.delivery.launching.launch`
behind ``umkm campaign launch`` with its deliverability guard); this module turns them
into pages. Reviewing is ``dinas_admin`` only; an author never reviews their own
revision (403 from the engine). A web launch only creates the run: the beat starts a
scheduled run and the sweeper hands a running run's rows to the workers.
"""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from engine.campaign import review
from engine.common.errors import BadRequest, EngineError
from engine.common.i18n import t
from engine.delivery import launching, trial_send
from engine.models import User
from web.auth import (
    SessionRoute,
    csrf_protect,
    get_db,
    page,
    require_admin,
    require_staff,
    settings_of,
)
from web.studio import EDITOR_CSP, NO_STORE, valid_spec
from web.studio_check import error_json, preview_json, validate

router = APIRouter(prefix="/dinas/kampanye", route_class=SessionRoute,
                   dependencies=[Depends(csrf_protect), Depends(require_staff)])


def _to(url: str, message: str) -> Response:
    return RedirectResponse(f"{url}?" + urlencode({"msg": message[:300]}), status_code=303)


@router.post("/uji-kirim")
def test_send(request: Request, yaml: str = Form(""), penerima: str = Form(""),
              kanal: str = Form("email"), user: User = Depends(require_staff),
              db: Session = Depends(get_db)) -> JSONResponse:
    """The editor's text for one recipient to the user's own address, marked [UJI]."""
    if penerima and not (penerima.isdigit() and len(penerima) < 19):
        return JSONResponse({"ok": False, "error": t("studio.bad_recipient",
                                                     value=penerima[:40])}, status_code=400)
    checked = valid_spec(request, db, yaml, "studio.fix_first")
    if isinstance(checked, JSONResponse):
        return checked
    try:
        address = trial_send.send_test(db, settings_of(request), checked[0], user, kanal,
                                       int(penerima) if penerima else None)
    except EngineError as exc:
        db.rollback()
        return JSONResponse({"ok": False, "error": str(exc)}, status_code=exc.http_status,
                            headers=NO_STORE)
    return JSONResponse({"ok": True, "message": t("studio.trial.sent", address=address,
                                                  channel=trial_send.label(kanal))},
                        headers=NO_STORE)


@router.post("/ajukan/{revision_id}")
def submit(revision_id: str, user: User = Depends(require_staff),
           db: Session = Depends(get_db)) -> Response:
    """Ask an admin to review the campaign's newest revision."""
    revision = review.get(db, revision_id)
    review.submit(db, revision, user.username)
    db.commit()
    return _to(f"/dinas/kampanye/revisi/{revision.campaign_key}",
               t("studio.review.submitted", number=revision.number))


@router.get("/tinjau", response_class=HTMLResponse)
def queue(request: Request, msg: str = "", user: User = Depends(require_admin),
          db: Session = Depends(get_db)) -> HTMLResponse:
    """Submitted revisions, oldest first; the admin's own are marked (no button)."""
    return page(request, "studio_review_list.html", {
        "rows": review.submitted(db), "me": user.username, "message": msg[:300]})


@router.get("/tinjau/{revision_id}", response_class=HTMLResponse)
def review_page(request: Request, revision_id: str, penerima: str = "",
                user: User = Depends(require_admin),
                db: Session = Depends(get_db)) -> HTMLResponse:
    """Diff against the last approved/launched revision, the preview, the decision."""
    revision = review.get(db, revision_id)
    view = review.review_view(db, revision)
    spec, errors = validate(db, settings_of(request), revision.yaml_text)
    customer = int(penerima) if penerima.isdigit() and len(penerima) < 19 else None
    preview = preview_json(db, spec, customer) if spec is not None else None
    return page(request, "studio_review.html", {
        "view": view, "r": revision, "state": review.state_label(revision.review),
        "errors": [error_json(e) for e in errors], "preview": preview,
        "own": revision.author == user.username, "penerima": customer,
        "submitted": revision.review == review.SUBMITTED,
    }, headers={"Content-Security-Policy": EDITOR_CSP, **NO_STORE})


@router.post("/tinjau/{revision_id}/setujui")
def approve(request: Request, revision_id: str, waktu: str = Form("jadwal"),
            user: User = Depends(require_admin), db: Session = Depends(get_db)) -> Response:
    """Approve and launch now (inside the send window) or at the campaign's own time."""
    if waktu not in ("sekarang", "jadwal"):
        raise BadRequest("studio.review.bad_when", value=waktu[:20])
    revision = review.get(db, revision_id)
    settings = settings_of(request)
    spec, _errors = validate(db, settings, revision.yaml_text)
    if spec is None:
        raise BadRequest("studio.review.invalid_now", number=revision.number)
    review.approve(db, revision, user.username)
    result, _verdict = launching.launch(
        db, settings, spec, f"studio:{revision.campaign_key}#{revision.number}",
        actor=user.username, start_now=waktu == "sekarang", revision_id=revision.id)
    run = result.run
    review.mark_launched(db, revision, user.username, run.id if run else None)
    db.commit()
    if run is None:
        return _to("/dinas/kampanye/tinjau", t("studio.review.activated", id=spec.id))
    return _to(f"/dinas/run/{run.id}", t("studio.review.launched", number=revision.number,
                                         run=run.id))


@router.post("/tinjau/{revision_id}/kembalikan")
def send_back(revision_id: str, catatan: str = Form(""), user: User = Depends(require_admin),
              db: Session = Depends(get_db)) -> Response:
    """Back to the author with a note (required)."""
    revision = review.get(db, revision_id)
    review.send_back(db, revision, user.username, catatan)
    db.commit()
    return _to("/dinas/kampanye/tinjau", t("studio.review.returned", number=revision.number,
                                           author=revision.author))
