"""Login, logout, sessions, CSRF and role checks for the portal and the dashboard.

Sessions live in the database (:mod:`engine.umkm.sessions`): the cookie carries only
an opaque random id, so it reveals nothing about the user, and the server can end a
session at any time. Logout, a password change and disabling the account revoke
sessions, after which a copied cookie is refused. The cookie is ``HttpOnly``,
``SameSite=Lax`` and ``Secure`` when ``BASE_URL`` is https; a session lasts 12 hours
from login and ends earlier after 2 idle hours.

A visitor who has not logged in gets the same kind of random id with no database row;
their CSRF token is an HMAC of that id under the engine secret, so pre-login forms are
protected without storing anything per visitor.

Every router of the portal, the dashboard and the showcase uses :class:`SessionRoute`
(session and language per request, HTML error pages) and the :func:`csrf_protect`
dependency, which rejects every unsafe request whose form lacks the session's token,
except the RFC 8058 one-click ``/u/*``, the token-authenticated ``/api/*`` and the
provider ``/webhooks/*``.

Logins are throttled by atomic database counters (:mod:`engine.umkm.login_limit`) per
user name, per client address and globally, raised *before* the password is verified,
so parallel guesses cannot slip past the limit; failures also go to the audit log.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from sqlalchemy.orm import Session

from engine.common.crypto import derived_key
from engine.common.i18n import SUPPORTED, set_lang, t
from engine.config import Settings
from engine.db import session_factory
from engine.models import AuditLog, Role, User
from engine.umkm import login_limit, sessions, users
from web.pages import render

SESSION_COOKIE = "umkm_sesi"
LANG_COOKIE = "umkm_lang"
SESSION_MAX_AGE = int(sessions.SESSION_LIFETIME.total_seconds())
CSRF_FIELD = "csrf_token"
CSRF_EXEMPT_PREFIXES = ("/u/", "/api/", "/webhooks/")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LOGIN_MAX_FAILURES = login_limit.PER_USERNAME
LOGIN_WINDOW = login_limit.WINDOW
_COOKIE_ID_RE = re.compile(r"^[A-Za-z0-9_-]{20,100}$")



# --- the session of a request ---------------------------------------------------------


@dataclass
class WebSession:
    """The session of one request: the cookie id, its CSRF token and, when logged in, who.

    Authorisation always re-reads the user row; ``username``/``role`` only feed the menu.
    """

    raw_id: str
    csrf: str
    user_id: int | None = None
    username: str = ""
    role: str = ""

    @classmethod
    def anonymous(cls, raw_id: str | None = None) -> WebSession:
        """A visitor's session: a random id (kept if given) and a token bound to it."""
        rid = raw_id or sessions.new_raw_id()
        return cls(raw_id=rid, csrf=anonymous_csrf(rid))

    @classmethod
    def of(cls, active: sessions.ActiveSession) -> WebSession:
        return cls(raw_id=active.raw_id, csrf=active.csrf, user_id=active.user_id,
                   username=active.username, role=active.role)


def anonymous_csrf(raw_id: str) -> str:
    """CSRF token of a not-logged-in visitor: derivable only with the engine secret."""
    return hmac.new(derived_key("csrf-anonymous"), raw_id.encode(), hashlib.sha256).hexdigest()


def read_session(request: Request) -> tuple[WebSession | None, bool]:
    """The request's session from its cookie id, and whether the cookie must be replaced.

    ``None`` when there is no (well-formed) cookie. A cookie naming a revoked, expired or
    idle session yields a fresh anonymous session and ``True``, so the dead id is dropped.
    """
    raw = request.cookies.get(SESSION_COOKIE) or ""
    if not _COOKIE_ID_RE.match(raw):
        return None, False
    with session_factory(settings_of(request))() as db:
        active, known = sessions.lookup_session(db, raw)
        db.commit()
    if active is not None:
        return WebSession.of(active), False
    if known:
        return WebSession.anonymous(), True
    return WebSession.anonymous(raw), False


def replace_session(request: Request, session: WebSession) -> None:
    """Install a new session for this request; the cookie is written with the response."""
    request.state.web_session = session
    request.state.csrf_token = session.csrf
    request.state.session_dirty = True


def web_session(request: Request) -> WebSession:
    session: WebSession = request.state.web_session
    return session


# --- per-request plumbing ----------------------------------------------------------------


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_db(request: Request) -> Iterator[Session]:
    """One database session per request (shared by every dependency of that request)."""
    session = session_factory(settings_of(request))()
    try:
        yield session
    finally:
        session.close()


def _language(request: Request) -> tuple[str | None, bool]:
    """``?lang=en`` switches (and is remembered in a cookie); else the cookie; else default."""
    asked = request.query_params.get("lang")
    if asked in SUPPORTED:
        return asked, True
    remembered = request.cookies.get(LANG_COOKIE)
    return (remembered if remembered in SUPPORTED else None), False


class SessionRoute(APIRoute):
    """Route class of every page router: language, session, cookie and HTML errors.

    A custom route class (not a middleware) so each router opts in by itself and
    ``web/app.py`` stays a plain list of routers. ``issue_session = False`` (the public
    showcase) reads an existing session for the menu but never sets a cookie on
    visitors who have not logged in.
    """

    issue_session = True

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        issue = self.issue_session

        async def with_session(request: Request) -> Response:
            _start_page_request(request, issue)
            try:
                response = await handler(request)
            except HTTPException as exc:
                response = error_response(request, exc)
            return finish_page_response(request, response)

        return with_session


def _start_page_request(request: Request, issue: bool) -> None:
    """Language and session of this request, kept in ``request.state`` for the response."""
    lang, switched = _language(request)
    set_lang(lang)
    session, replace = read_session(request)
    request.state.web_session = session or WebSession.anonymous()
    request.state.csrf_token = request.state.web_session.csrf
    request.state.session_dirty = (session is None and issue) or replace
    request.state.lang_cookie = lang if switched else None


def finish_page_response(request: Request, response: Response) -> Response:
    """Write the session and language cookies a page request decided on.

    Also called by the app's engine-error handler, so an error page keeps the cookies
    exactly as a page rendered by the route itself would; a request that did not go
    through :class:`SessionRoute` has nothing to write.
    """
    if getattr(request.state, "session_dirty", False):
        _set_session_cookie(request, response)
    lang = getattr(request.state, "lang_cookie", None)
    if lang:
        response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, httponly=True,
                            samesite="lax", secure=_secure(request))
    return response


class PublicRoute(SessionRoute):
    issue_session = False


def _secure(request: Request) -> bool:
    return settings_of(request).base_url.lower().startswith("https://")


def _set_session_cookie(request: Request, response: Response) -> None:
    response.set_cookie(SESSION_COOKIE, web_session(request).raw_id,
                        max_age=SESSION_MAX_AGE, httponly=True, samesite="lax",
                        secure=_secure(request), path="/")


def error_response(request: Request, exc: HTTPException) -> Response:
    """Redirects stay redirects; everything else is a small Indonesian HTML page."""
    headers = dict(exc.headers or {})
    if 300 <= exc.status_code < 400 and "Location" in headers:
        return RedirectResponse(headers["Location"], status_code=exc.status_code)
    message = exc.detail if isinstance(exc.detail, str) else t("auth.error_title")
    if exc.status_code == 404 and message == "Not Found":
        message = t("auth.not_found")
    return error_page(request, message, exc.status_code, headers)


def error_page(request: Request, message: str, status_code: int,
               headers: dict[str, str] | None = None) -> HTMLResponse:
    """The one small error page of the site (HTTP refusals and engine errors alike)."""
    return page(request, "showcase_error.html", {"message": message},
                status_code=status_code, headers=headers)


def page(request: Request, name: str, context: dict[str, Any] | None = None,
         status_code: int = 200, headers: dict[str, str] | None = None) -> HTMLResponse:
    """:func:`web.pages.render` plus the menu's view of who is logged in."""
    session = getattr(request.state, "web_session", None)
    ctx: dict[str, Any] = {"session_user": None}
    if isinstance(session, WebSession) and session.user_id:
        ctx["session_user"] = {"username": session.username, "role": session.role,
                               "staff": session.role in {r.value for r in users.STAFF_ROLES}}
    ctx.update(context or {})
    response = render(request, name, ctx, status_code=status_code)
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


# --- CSRF ------------------------------------------------------------------------------------


def _same_origin(request: Request) -> bool:
    """A browser's ``Origin`` must name this site (defence in depth next to the token)."""
    origin = request.headers.get("origin")
    if not origin or origin == "null":
        return origin is None
    allowed = {f"{request.url.scheme}://{request.headers.get('host', '')}",
               _origin_of(settings_of(request).base_url)}
    return origin.rstrip("/") in allowed


def _origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


async def csrf_protect(request: Request) -> None:
    """Reject an unsafe request whose form field ``csrf_token`` is not this session's."""
    if request.method in SAFE_METHODS or request.url.path.startswith(CSRF_EXEMPT_PREFIXES):
        return
    expected = getattr(request.state, "csrf_token", "")
    sent: Any = None
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        sent = (await request.form()).get(CSRF_FIELD)
    if (not isinstance(sent, str) or not expected
            or not hmac.compare_digest(sent.encode(), expected.encode())
            or not _same_origin(request)):
        raise HTTPException(status_code=403, detail=t("auth.csrf"))


# --- who is logged in -----------------------------------------------------------------------


def current_user(request: Request, db: Session = Depends(get_db)) -> User | None:
    """The logged-in, active user of this request's (server-validated) session, else None."""
    session = web_session(request)
    if not session.user_id:
        return None
    user = db.get(User, session.user_id)
    if user is None or not user.active:
        replace_session(request, WebSession.anonymous())
        return None
    return user


def require_user(request: Request, user: User | None = Depends(current_user)) -> User:
    if user is None:
        target = request.url.path if request.method in SAFE_METHODS else ""
        location = "/login" + (f"?next={quote(target)}" if target else "")
        raise HTTPException(status_code=303, headers={"Location": location})
    return user


def require_owner(user: User = Depends(require_user)) -> User:
    if user.role != Role.umkm_owner:
        raise HTTPException(status_code=403, detail=t("auth.forbidden"))
    return user


def require_staff(user: User = Depends(require_user)) -> User:
    if not users.is_staff(user):
        raise HTTPException(status_code=403, detail=t("auth.forbidden"))
    return user


def require_pendamping(user: User = Depends(require_user)) -> User:
    """A tenaga pendamping (Pasal 9 ayat 2); staff and admins are not one by their role."""
    if user.role != Role.pendamping:
        raise HTTPException(status_code=403, detail=t("auth.forbidden"))
    return user


def require_admin(user: User = Depends(require_user)) -> User:
    if user.role != Role.dinas_admin:
        raise HTTPException(status_code=403, detail=t("auth.forbidden"))
    return user


# --- login throttling and audit -------------------------------------------------------


def client_ip(request: Request) -> str:
    """The peer address; a proxy header is not trusted (it would let anyone pick a key)."""
    return request.client.host if request.client else "-"


def _attempt_key(username: str, ip: str) -> str:
    return hashlib.sha256(f"{users.normalize_username(username)}|{ip}".encode()).hexdigest()


def _record_attempt(db: Session, username: str, ip: str, ok: bool) -> None:
    """The audit trail of a verified login (one row per password actually checked)."""
    db.add(AuditLog(actor=users.normalize_username(username)[:120] or "-",
                    action="auth.login" if ok else "auth.login_failed", entity="login",
                    entity_id=_attempt_key(username, ip), detail={"ip": ip}))
    db.flush()


def _throttled(request: Request, context: dict[str, Any]) -> HTMLResponse:
    minutes = int(LOGIN_WINDOW.total_seconds() // 60)
    return page(request, "login.html", {**context, "error": t("auth.too_many", minutes=minutes)},
                status_code=429, headers={"Retry-After": str(minutes * 60)})


def safe_next(target: str | None) -> str | None:
    """Only a path on this site: never ``//host``, a scheme or a backslash trick."""
    value = (target or "").strip()
    if not value.startswith("/") or value.startswith("//") or "\\" in value:
        return None
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return None
    return value


def home_for(user: User) -> str:
    if user.role == Role.pendamping:
        return "/pendamping"
    return "/dinas" if users.is_staff(user) else "/portal"


# --- routes ----------------------------------------------------------------------------------

router = APIRouter(route_class=SessionRoute, dependencies=[Depends(csrf_protect)])


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str = "") -> HTMLResponse:
    return page(request, "login.html", {"next": safe_next(next) or "", "error": None})


@router.post("/login", response_class=HTMLResponse)
def login_submit(
    request: Request,
    username: str = Form(""),
    password: str = Form(""),
    next: str = Form(""),
    db: Session = Depends(get_db),
) -> Response:
    ip = client_ip(request)
    name = users.normalize_username(username)
    context = {"next": safe_next(next) or "", "username": username[:120]}
    verdict = login_limit.count_attempt(db, name, ip)
    db.commit()  # the counts are visible to every other request before any hash is checked
    if not verdict.allowed:
        return _throttled(request, context)
    user = users.authenticate(db, username, password)
    if user is None:
        _record_attempt(db, username, ip, ok=False)
        db.commit()
        return page(request, "login.html", {**context, "error": t("auth.failed")},
                    status_code=401)
    login_limit.record_success(db, name, ip)
    _record_attempt(db, username, ip, ok=True)
    previous = web_session(request)
    if previous.user_id:  # logging in again over an old session ends that one
        sessions.revoke_session(db, previous.raw_id)
    active = sessions.create_session(db, user)
    db.commit()
    replace_session(request, WebSession.of(active))
    return RedirectResponse(safe_next(next) or home_for(user), status_code=303)


@router.post("/logout")
def logout(request: Request, db: Session = Depends(get_db)) -> Response:
    """Revoke the session in the database: a copy of the cookie is worthless afterwards."""
    session = web_session(request)
    if session.user_id:
        sessions.revoke_session(db, session.raw_id)
        db.commit()
    replace_session(request, WebSession.anonymous())
    return RedirectResponse("/", status_code=303)


@router.get("/akun/sandi", response_class=HTMLResponse)
def password_form(request: Request, user: User = Depends(require_user)) -> HTMLResponse:
    return page(request, "login_password.html", {"error": None, "done": False})


@router.post("/akun/sandi", response_class=HTMLResponse)
def password_submit(
    request: Request,
    old_password: str = Form(""),
    new_password: str = Form(""),
    new_password2: str = Form(""),
    user: User = Depends(require_user),
    db: Session = Depends(get_db),
) -> HTMLResponse:
    if new_password != new_password2:
        return page(request, "login_password.html",
                    {"error": t("auth.password_mismatch"), "done": False}, status_code=400)
    try:
        users.change_password(db, user, old_password, new_password)
    except users.UserError as exc:
        db.rollback()
        return page(request, "login_password.html", {"error": str(exc), "done": False},
                    status_code=400)
    active = sessions.create_session(db, user)  # every older session was just revoked
    db.commit()
    replace_session(request, WebSession.of(active))
    return page(request, "login_password.html", {"error": None, "done": True})
