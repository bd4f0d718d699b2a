"""Login, logout, sessions, CSRF and role checks for the portal and the dashboard.

Sessions are a cookie signed with the engine secret (itsdangerous, key
``derived_key("session")``), so no session table is needed and any number of web
processes accept it. The cookie holds the user id, a per-session CSRF token and a
fingerprint of the password hash: changing a password ends every other session.
It is ``HttpOnly``, ``SameSite=Lax`` and ``Secure`` when ``BASE_URL`` is https, and it
expires 12 hours after login (renewed while in use).

Every router of the portal, the dashboard and the showcase uses :class:`SessionRoute`
(session and language per request, HTML error pages) and the :func:`csrf_protect`
dependency, which rejects every unsafe request whose form lacks the session's token,
except the RFC 8058 one-click ``/u/*``, the token-authenticated ``/api/*`` and the
provider ``/webhooks/*``.

Failed logins are rate-limited per username and client address (5 in 15 minutes) from
the audit log, so the limit holds across web processes and leaves a trail for staff.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.common.crypto import derived_key
from engine.common.i18n import SUPPORTED, set_lang, t
from engine.config import Settings
from engine.db import session_factory
from engine.models import AuditLog, Role, User, utcnow
from engine.umkm import users
from web.pages import render

SESSION_COOKIE = "umkm_sesi"
LANG_COOKIE = "umkm_lang"
SESSION_MAX_AGE = 12 * 3600
SESSION_RENEW_AFTER = 3600
CSRF_FIELD = "csrf_token"
CSRF_EXEMPT_PREFIXES = ("/u/", "/api/", "/webhooks/")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LOGIN_MAX_FAILURES = 5
LOGIN_WINDOW = timedelta(minutes=15)



# --- the signed session ------------------------------------------------------------------


@dataclass
class WebSession:
    """What the signed cookie carries; authorisation always re-reads the user row."""

    csrf: str
    user_id: int | None = None
    fingerprint: str = ""
    username: str = ""
    role: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"c": self.csrf, "u": self.user_id, "f": self.fingerprint,
                "n": self.username, "r": self.role}

    @classmethod
    def from_dict(cls, data: Any) -> WebSession | None:
        if not isinstance(data, dict) or not isinstance(data.get("c"), str):
            return None
        uid = data.get("u")
        return cls(csrf=data["c"], user_id=uid if isinstance(uid, int) else None,
                   fingerprint=str(data.get("f") or ""), username=str(data.get("n") or ""),
                   role=str(data.get("r") or ""))

    @classmethod
    def anonymous(cls) -> WebSession:
        return cls(csrf=secrets.token_urlsafe(32))

    @classmethod
    def for_user(cls, user: User) -> WebSession:
        """A brand-new session (new CSRF token too): no fixation of a pre-login cookie."""
        return cls(csrf=secrets.token_urlsafe(32), user_id=user.id,
                   fingerprint=users.session_fingerprint(user), username=user.username,
                   role=user.role.value)


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(derived_key("session"), salt="umkm-web-session")


def read_session(raw: str | None) -> tuple[WebSession | None, float]:
    """The session in a cookie value and its age in seconds; ``None`` if absent/forged/old."""
    if not raw:
        return None, 0.0
    try:
        data, signed_at = _serializer().loads(raw, max_age=SESSION_MAX_AGE,
                                              return_timestamp=True)
    except BadSignature:  # also SignatureExpired
        return None, 0.0
    return WebSession.from_dict(data), time.time() - signed_at.timestamp()


def dump_session(session: WebSession) -> str:
    value: str = _serializer().dumps(session.as_dict())
    return value


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
    session, age = read_session(request.cookies.get(SESSION_COOKIE))
    request.state.web_session = session or WebSession.anonymous()
    request.state.csrf_token = request.state.web_session.csrf
    request.state.session_dirty = (session is None and issue) or (
        session is not None and age > SESSION_RENEW_AFTER
    )
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
    response.set_cookie(SESSION_COOKIE, dump_session(web_session(request)),
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
    """The logged-in, active user whose password has not changed since login, else None."""
    session = web_session(request)
    if not session.user_id:
        return None
    user = db.get(User, session.user_id)
    if (user is None or not user.active
            or not hmac.compare_digest(users.session_fingerprint(user), session.fingerprint)):
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


def require_admin(user: User = Depends(require_user)) -> User:
    if user.role != Role.dinas_admin:
        raise HTTPException(status_code=403, detail=t("auth.forbidden"))
    return user


# --- login rate limit (from the audit log) ------------------------------------------------


def client_ip(request: Request) -> str:
    """The peer address; a proxy header is not trusted (it would let anyone pick a key)."""
    return request.client.host if request.client else "-"


def _attempt_key(username: str, ip: str) -> str:
    return hashlib.sha256(f"{users.normalize_username(username)}|{ip}".encode()).hexdigest()


def recent_failures(db: Session, username: str, ip: str) -> int:
    """Failed logins for this username+address in the window, since the last success."""
    key = _attempt_key(username, ip)
    since = utcnow() - LOGIN_WINDOW
    last_ok = db.scalar(select(func.max(AuditLog.at)).where(
        AuditLog.entity == "login", AuditLog.entity_id == key, AuditLog.action == "auth.login"))
    query = select(func.count()).select_from(AuditLog).where(
        AuditLog.entity == "login", AuditLog.entity_id == key,
        AuditLog.action == "auth.login_failed", AuditLog.at >= since)
    if last_ok is not None:
        query = query.where(AuditLog.at > last_ok)
    return int(db.scalar(query) or 0)


def _record_attempt(db: Session, username: str, ip: str, ok: bool) -> None:
    db.add(AuditLog(actor=users.normalize_username(username)[:120] or "-",
                    action="auth.login" if ok else "auth.login_failed", entity="login",
                    entity_id=_attempt_key(username, ip), detail={"ip": ip}))
    db.commit()


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
    context = {"next": safe_next(next) or "", "username": username[:120]}
    if recent_failures(db, username, ip) >= LOGIN_MAX_FAILURES:
        minutes = int(LOGIN_WINDOW.total_seconds() // 60)
        return page(request, "login.html",
                    {**context, "error": t("auth.too_many", minutes=minutes)},
                    status_code=429, headers={"Retry-After": str(minutes * 60)})
    user = users.authenticate(db, username, password)
    if user is None:
        _record_attempt(db, username, ip, ok=False)
        return page(request, "login.html", {**context, "error": t("auth.failed")},
                    status_code=401)
    _record_attempt(db, username, ip, ok=True)
    replace_session(request, WebSession.for_user(user))
    return RedirectResponse(safe_next(next) or home_for(user), status_code=303)


@router.post("/logout")
def logout(request: Request) -> Response:
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
    db.commit()
    replace_session(request, WebSession.for_user(user))
    return page(request, "login_password.html", {"error": None, "done": True})
