"""Open pixel ``/t/o``, click redirect ``/t/c`` and unsubscribe ``/u`` (RFC 8058).

Security rules of this module:

* a token that fails verification, names an unknown row, or (for clicks) a link of
  another run is a 404 and never a redirect: the only redirect target is the URL we
  stored in ``tracked_link`` ourselves, and only when it is an absolute http(s) URL;
* ``GET /u/...`` never changes anything (mail gateways fetch every link); the
  one-click ``POST`` (body ``List-Unsubscribe=One-Click``, no cookies) unsubscribes at
  once and answers 200 without a redirect; the page's own form is protected by a token
  derived from the unsubscribe token (an HMAC), since no cookie session exists here;
* ``/u/konfirmasi/<token>`` is the confirmed opt-in (:mod:`engine.customers.optin`):
  ``GET`` shows the page, only the page's ``POST`` lifts the person's own suppression; a
  tampered link is a 404 page, an expired one a 410 page.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException as StarletteHTTPException

from engine.common.crypto import derived_key
from engine.common.formatting import jam, tanggal
from engine.common.i18n import t
from engine.customers import consent, optin
from engine.db import session_factory
from engine.engagement import events
from engine.engagement.ingest import Ingest
from engine.engagement.tracking import InvalidToken, TokenData, parse_token
from engine.models import Customer, Delivery, utcnow
from web.pages import render

router = APIRouter(include_in_schema=False)

# A 1x1 transparent GIF (43 bytes).
PIXEL = (b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00"
         b"\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;")
NO_STORE = {"Cache-Control": "no-store, no-cache, must-revalidate, private, max-age=0",
            "Pragma": "no-cache", "Expires": "0"}
ONE_CLICK_FIELD = "List-Unsubscribe"
ONE_CLICK_VALUE = "One-Click"
FORM_TOKEN_FIELD = "csrf_token"
SOURCE_ONE_CLICK = "one-click"
SOURCE_PREFERENCES = "preference-centre"



def get_session(request: Request) -> Iterator[Session]:
    """One database session per request, from the app's settings."""
    session = session_factory(request.app.state.settings)()
    try:
        yield session
    finally:
        session.close()


def _user_agent(request: Request) -> str | None:
    return request.headers.get("user-agent")


def not_found_page(request: Request) -> HTMLResponse:
    """The 404 of every tracking URL: a page, never a redirect, never a Location."""
    response = render(request, "unsubscribe_invalid.html",
                      {"title": t("link.invalid_title"), "message": t("link.invalid")},
                      status_code=404)
    response.headers.update(NO_STORE)
    return response


# ----------------------------------------------------------------------------- open / click
def _get_only(request: Request) -> None:
    """A plain Starlette route also answers HEAD; these never did (a link checker's HEAD
    is no open and no click): the same 405 as every other GET-only route."""
    if request.method != "GET":
        raise StarletteHTTPException(status_code=405, headers={"Allow": "GET"})


def ingest_of(app: Any) -> Ingest:
    """The app's tracking ingest (fact caches and buffer), made at the first event."""
    found = getattr(app.state, "tracking_ingest", None)
    if found is None:
        found = app.state.tracking_ingest = Ingest(app.state.settings)
    return found


def pixel_response() -> Response:
    """The answer to a recorded open (the fast path sends the same headers)."""
    return Response(PIXEL, media_type="image/gif", headers=NO_STORE)


def click_response(url: str) -> Response:
    """The answer to a recorded click: 302 to the stored URL, never cached."""
    return RedirectResponse(url, status_code=302, headers=NO_STORE)


async def open_pixel(request: Request) -> Response:
    """The 1x1 GIF of an email; every fetch is one ``open`` event (buffered: no commit
    per request with Redis, see :mod:`engine.engagement.ingest`)."""
    _get_only(request)
    if not await ingest_of(request.app).track_open(request.path_params["token"],
                                                   _user_agent(request)):
        return not_found_page(request)
    return pixel_response()


async def click(request: Request) -> Response:
    """302 to the link we stored for (delivery, link); anything else is a 404."""
    _get_only(request)
    url = await ingest_of(request.app).track_click(request.path_params["token"],
                                                   _user_agent(request))
    if url is None:
        return not_found_page(request)
    return click_response(url)


# Plain Starlette routes (no FastAPI parameter solving): the two hottest URLs of the
# site do nothing FastAPI's dependency layer would add, and it costs a third of a
# request's CPU (issue 22, docs/performance.md "Tracking").
router.add_route("/t/o/{token}", open_pixel, methods=["GET"], include_in_schema=False)
router.add_route("/t/c/{token}", click, methods=["GET"], include_in_schema=False)


# ----------------------------------------------------------------------------- unsubscribe
@dataclass
class UnsubscribeTarget:
    """Who an unsubscribe token speaks for."""

    token: str
    channel: str
    delivery: Delivery | None
    customer: Customer | None

    @property
    def subject(self) -> Delivery | Customer:
        if self.delivery is not None:
            return self.delivery
        assert self.customer is not None
        return self.customer

    @property
    def address(self) -> str | None:
        if self.delivery is not None:
            return self.delivery.recipient
        return consent.address_for(self.customer, self.channel) if self.customer else None


def _target(db: Session, token: str) -> UnsubscribeTarget | None:
    try:
        data: TokenData = parse_token(token, "unsubscribe")
    except InvalidToken:
        return None
    if data.delivery_id is not None:
        delivery = db.get(Delivery, data.delivery_id)
        if delivery is None:
            return None
        customer = db.get(Customer, delivery.customer_id) if delivery.customer_id else None
        return UnsubscribeTarget(token, delivery.channel, delivery, customer)
    customer = db.get(Customer, data.customer_id) if data.customer_id is not None else None
    if customer is None or data.channel not in consent.CHANNELS:
        return None
    return UnsubscribeTarget(token, data.channel, None, customer)


def form_token(unsubscribe_token: str) -> str:
    """The CSRF value of the preference form: bound to the unsubscribe token, no cookie."""
    key = derived_key("unsubscribe-form")
    return hmac.new(key, unsubscribe_token.encode(), hashlib.sha256).hexdigest()


def mask_address(address: str | None) -> str:
    """``budi.santoso@contoh.id`` -> ``bu***@contoh.id``; phones keep the last 3 digits."""
    if not address:
        return "-"
    if "@" in address:
        local, domain = address.rsplit("@", 1)
        return f"{local[:2]}***@{domain}"
    return "*" * max(len(address) - 3, 0) + address[-3:]


def _page_context(db: Session, target: UnsubscribeTarget) -> dict[str, Any]:
    customer = target.customer
    channels = consent.channels_of(customer, target.delivery) or [target.channel]
    prefs = (customer.preferences or {}) if customer is not None else {}
    muted = set(prefs.get("muted_categories") or [])
    stated = prefs.get("categories")
    categories = [{"value": c, "label": t(f"unsub.category.{c}"),
                   "checked": c not in muted and (not stated or c in stated)}
                  for c in consent.CATEGORIES]
    rows = [{"value": c, "label": t(f"unsub.channel.{c}"),
             "checked": customer is not None and consent.has_consent(db, customer.id, c)
             and not _suppressed(db, customer, c)}
            for c in channels]
    return {"token": target.token, "csrf_token": form_token(target.token),
            "address": mask_address(target.address), "channel": target.channel,
            "channel_label": t(f"unsub.channel.{target.channel}")
            if target.channel in consent.CHANNELS else target.channel,
            "channels": rows, "categories": categories,
            "has_preferences": customer is not None}


def _suppressed(db: Session, customer: Customer, channel: str) -> bool:
    address = consent.address_for(customer, channel)
    return bool(address and consent.find_suppression(db, channel, address))


@router.get("/u/{token}")
def unsubscribe_page(token: str, request: Request,
                     db: Session = Depends(get_session)) -> Response:
    """Confirmation page and preference centre; it never changes anything by itself."""
    target = _target(db, token)
    if target is None:
        return not_found_page(request)
    response = render(request, "unsubscribe.html", _page_context(db, target))
    response.headers.update(NO_STORE)
    return response


def _withdraw(db: Session, target: UnsubscribeTarget, channels: list[str],
              source: str) -> None:
    changed = False
    for channel in channels:
        changed = consent.unsubscribe(db, target.subject, channel, source).changed or changed
    if target.delivery is not None:
        events.record_unsubscribe(db, target.delivery, source=source)
    elif changed and target.customer is not None:
        events.record_unsubscribe(db, None, source=source, customer_id=target.customer.id,
                                  channel=target.channel)


@dataclass
class FormFields:
    """What the preference-centre form posted."""

    csrf: str
    action: str
    channels: list[str]
    categories: list[str]


@router.post("/u/{token}")
async def unsubscribe_post(token: str, request: Request) -> Response:
    """RFC 8058 one-click (no cookies, 200, no redirect) or the preference form."""
    form = await request.form()
    one_click = form.get(ONE_CLICK_FIELD) == ONE_CLICK_VALUE
    fields = FormFields(csrf=str(form.get(FORM_TOKEN_FIELD) or ""),
                        action=str(form.get("action") or ""),
                        channels=[str(v) for v in form.getlist("channel")],
                        categories=[str(v) for v in form.getlist("category")])
    sessions = session_factory(request.app.state.settings)
    with sessions() as db:
        target = _target(db, token)
        if target is None:
            return not_found_page(request)
        if one_click:
            _withdraw(db, target, [target.channel], SOURCE_ONE_CLICK)
            db.commit()
            return PlainTextResponse(t("unsub.one_click_ok"), headers=NO_STORE)
        if not hmac.compare_digest(fields.csrf.encode(), form_token(token).encode()):
            return render(request, "unsubscribe_invalid.html",
                          {"title": t("unsub.title"), "message": t("unsub.form_invalid")},
                          status_code=403)
        return _apply_form(request, db, target, fields)


def _apply_form(request: Request, db: Session, target: UnsubscribeTarget,
                fields: FormFields) -> Response:
    action = fields.action
    ctx: dict[str, Any] = {"token": target.token, "address": mask_address(target.address)}
    if action in ("unsubscribe", "all"):
        channels = [target.channel] if action == "unsubscribe" else \
            consent.channels_of(target.customer, target.delivery) or [target.channel]
        _withdraw(db, target, channels, SOURCE_PREFERENCES)
        db.commit()
        now = utcnow()
        ctx.update(title=t("unsub.done_title"),
                   message=t("unsub.done_all", address=ctx["address"],
                             when=f"{tanggal(now)} {jam(now)}"))
        return render(request, "unsubscribe_done.html", ctx)
    if action != "save":
        return render(request, "unsubscribe_invalid.html",
                      {"title": t("unsub.title"), "message": t("unsub.form_invalid")},
                      status_code=400)
    result = consent.save_preferences(
        db, target.subject, fields.channels,
        fields.categories if target.customer is not None else None,
        SOURCE_PREFERENCES, own_channel=target.channel)
    if result.unsubscribed and target.delivery is not None:
        events.record_unsubscribe(db, target.delivery, source=SOURCE_PREFERENCES)
    elif result.unsubscribed and target.customer is not None:
        events.record_unsubscribe(db, None, source=SOURCE_PREFERENCES,
                                  customer_id=target.customer.id, channel=target.channel)
    db.commit()
    notes = [t("unsub.saved")]
    if result.unsubscribed:
        notes.append(t("unsub.stopped", channels=", ".join(
            t(f"unsub.channel.{c}") for c in result.unsubscribed)))
    if result.granted:
        notes.append(t("unsub.resumed", channels=", ".join(
            t(f"unsub.channel.{c}") for c in result.granted)))
    ctx.update(title=t("unsub.saved_title"), message=" ".join(notes))
    return render(request, "unsubscribe_done.html", ctx)


# ----------------------------------------------------------------------------- confirmed opt-in
CONFIRM_FORM_PURPOSE = "confirm-opt-in-form"


def confirm_form_token(token: str) -> str:
    """The CSRF value of the confirmation form: bound to its token, no cookie needed."""
    key = derived_key(CONFIRM_FORM_PURPOSE)
    return hmac.new(key, token.encode(), hashlib.sha256).hexdigest()


def _confirmation_refused(request: Request, error: optin.InvalidConfirmation) -> HTMLResponse:
    """404 for a tampered or unknown link, 410 for an expired one; never a redirect."""
    if not error.expired:
        return not_found_page(request)
    response = render(request, "unsubscribe_invalid.html",
                      {"title": t("optin.expired_title"), "message": t("optin.expired")},
                      status_code=410)
    response.headers.update(NO_STORE)
    return response


def _confirm_context(token: str, found: optin.Confirmation, done: bool) -> dict[str, Any]:
    return {"title": t("optin.done_title" if done else "optin.title"), "token": token,
            "form_token": confirm_form_token(token), "done": done,
            "address": mask_address(found.address),
            "channel_label": t(f"unsub.channel.{found.channel}")}


@router.get("/u/konfirmasi/{token}")
def confirm_page(token: str, request: Request, db: Session = Depends(get_session)) -> Response:
    """The confirmation page; GET never changes anything (link scanners fetch links)."""
    try:
        found = optin.verify(db, token)
    except optin.InvalidConfirmation as error:
        return _confirmation_refused(request, error)
    response = render(request, "confirm_opt_in.html", _confirm_context(token, found, False))
    response.headers.update(NO_STORE)
    return response


@router.post("/u/konfirmasi/{token}")
async def confirm_post(token: str, request: Request) -> Response:
    """The person pressed the button: their own suppression is lifted, consent recorded
    with source ``confirmed_opt_in`` (the only path that undoes a person's withdrawal)."""
    form = await request.form()
    sent = str(form.get(FORM_TOKEN_FIELD) or "")
    with session_factory(request.app.state.settings)() as db:
        try:
            found = optin.verify(db, token)
        except optin.InvalidConfirmation as error:
            return _confirmation_refused(request, error)
        if not hmac.compare_digest(sent.encode(), confirm_form_token(token).encode()):
            return render(request, "unsubscribe_invalid.html",
                          {"title": t("optin.title"), "message": t("optin.form_invalid")},
                          status_code=403)
        consent.confirm_opt_in(db, found.customer, found.channel)
        db.commit()
        response = render(request, "confirm_opt_in.html", _confirm_context(token, found, True))
    response.headers.update(NO_STORE)
    return response
