"""The FastAPI application: tracking, unsubscribe, API, owner portal, dashboard, showcase.

Server-rendered pages (Jinja2), light enough for a phone on a slow connection. Each
concern is a router in its own module; this file only assembles them and installs the
one translation of engine errors (:func:`engine_error_response`).
"""

from __future__ import annotations

import gc
import importlib
import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import DataError

from engine.common.errors import BadRequest, EngineError
from engine.common.production import check_production_settings
from engine.config import Settings, get_settings
from web.auth import error_page, finish_page_response
from web.bounce_routes import MAX_RAW_BYTES
from web.headers import SecurityHeaders
from web.limits import BodyLimits
from web.media_routes import FORM_ROOM, upload_limit_overrides
from web.pages import STATIC_DIR
from web.studio_check import MAX_BODY_BYTES as STUDIO_MAX_BODY
from web.tracking_fast import TrackingFastPath

log = logging.getLogger(__name__)

# Router modules, in order; each exposes ``router`` (an APIRouter).
ROUTER_MODULES = (
    "web.optin_routes",      # /u/berlangganan-lagi (before /u/{token})
    "web.tracking_routes",   # /t/o, /t/c, /u (RFC 8058), preference centre
    "web.bounce_routes",     # bounce/complaint webhook
    "web.whatsapp_routes",   # WhatsApp Cloud API webhook: opt-outs, 24-hour window
    "web.api",               # JSON API (order events, consent), OpenAPI
    "web.auth",              # login/logout, sessions, CSRF
    "web.portal",            # UMKM owner portal
    "web.feeds",             # /feed/google.xml, /feed/meta.csv, /m/<link>: Pasal 7(4)
    "web.signup",            # /daftar: owners sign up on their own; send for verification
    "web.users_admin",       # /dinas/pengguna: accounts (dinas_admin only)
    "web.doctor_page",       # /dinas/keterkiriman: deliverability checklist (dinas_admin only)
    "web.dmarc_page",        # /dinas/dmarc: DMARC aggregate reports per source (staff)
    "web.portal_products",   # owner portal: archive and delete a product
    "web.portal_programmes", # owner portal: trainings (Pasal 8) and guidance (Pasal 9)
    "web.pendamping",        # /pendamping: a tenaga pendamping's assigned requests (Pasal 9)
    "web.dinas_training",    # /dinas/pelatihan: trainings, attendance, participation
    "web.dinas_guidance",    # /dinas/pendampingan: requests, assignment (admin), figures
    "web.accounts_connect",  # /dinas/akun-sosial/hubungkan (before web.dashboard)
    "web.studio",            # /dinas/kampanye: campaign list, starters, editor, preview
    "web.programme_plan",    # /dinas/rencana: annual plan, target vs realisation (Pasal 11-12)
    "web.agreements",        # /dinas/kesepakatan: agreements with providers (Pasal 13-14)
    "web.supervision",       # /dinas/pengawasan, /portal/pengaduan: complaints (Pasal 14)
    "web.studio_review",     # /dinas/kampanye/tinjau: four eyes, test send (before dashboard)
    "web.run_page",          # /dinas/run/<id>: one run, its revision, cancel
    "web.audit_page",        # /dinas/audit: the audit log (dinas_admin only)
    "web.dinas_reports",     # /dinas/laporan, /dinas/usaha/{id}, /dinas/kecamatan/{code}
    "web.report_assets",     # /aset/laporan.css (the report's styles, CSP-friendly)
    "web.dashboard",         # Dinas dashboard
    "web.showcase",          # public product catalogue (Pasal 7(1))
    "web.apidocs",           # /docs, /openapi.json: for Dinas staff, served locally
    "web.media_routes",      # /media/<sha256>/<size>.jpg product photos, /favicon.ico
)
# Routes with their own body limit: bigger than ``max_body_bytes`` (raw bounce mails, with
# room for the route's own 413), or smaller (the studio's editor checks).
BODY_LIMIT_OVERRIDES = {"/webhooks/bounce": MAX_RAW_BYTES + 64 * 1024,
                        "/dinas/kampanye/periksa": STUDIO_MAX_BODY,
                        "/dinas/kampanye/pratinjau": STUDIO_MAX_BODY,
                        "/dinas/kampanye/uji-kirim": STUDIO_MAX_BODY}

# Signed agreement PDFs (web.agreements) may be as big as AGREEMENT_MAX_BYTES.
AGREEMENTS_PATH = "/dinas/kesepakatan"

API_PREFIX = "/api/"


def engine_error_response(request: Request, exc: Exception) -> Response:
    """Any :class:`EngineError` a route lets escape, answered with the class's status.

    The JSON API gets the body it has always had (``{"detail": "<text>"}``, like
    FastAPI's own errors); every other path gets the site's error page with the session
    and language cookies the page would have set. The text is the error's catalog
    message in the request's language (Indonesian unless the page switched to English).
    """
    if not isinstance(exc, EngineError):  # registered for EngineError only
        raise exc
    if request.url.path.startswith(API_PREFIX):
        return JSONResponse({"detail": str(exc)}, status_code=exc.http_status)
    return finish_page_response(request, error_page(request, str(exc), exc.http_status))


# SQLSTATE of PostgreSQL's "bigint out of range" (numeric_value_out_of_range).
NUMERIC_OUT_OF_RANGE = "22003"


def number_out_of_range_response(request: Request, exc: Exception) -> Response:
    """A number beyond the database's 64-bit integers (``/produk/99999999999999999999999``):
    400 with a plain explanation, never a 500 from the driver.

    SQLite's driver raises ``OverflowError`` before the query runs, PostgreSQL answers
    SQLSTATE 22003; any other data error stays a server error.
    """
    if isinstance(exc, DataError) and \
            getattr(exc.orig, "sqlstate", None) != NUMERIC_OUT_OF_RANGE:
        raise exc
    return engine_error_response(request, BadRequest("web.number_out_of_range"))


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    check_production_settings(settings)
    app = FastAPI(
        title="UMKM TTS — mesin pemasaran multi-kanal",
        version="0.1.0",
        description="API Dinas Koperasi & UMKM Kabupaten Timor Tengah Selatan "
                    "(Perbup TTS 17/2025).",
        docs_url=None, redoc_url=None, openapi_url=None,
        # No OpenTelemetry here (no SDK, no exporter): off, FastAPI would otherwise ask
        # the OTel globals and os.environ on every request (~5% of a pixel, issue 22).
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    app.add_exception_handler(EngineError, engine_error_response)
    app.add_exception_handler(OverflowError, number_out_of_range_response)
    app.add_exception_handler(DataError, number_out_of_range_response)
    app.add_middleware(BodyLimits, max_bytes=settings.max_body_bytes,
                       max_depth=settings.max_json_depth, overrides={
                           **BODY_LIMIT_OVERRIDES,
                           **upload_limit_overrides(settings.media_max_bytes),
                           AGREEMENTS_PATH: settings.agreement_max_bytes + FORM_ROOM})
    app.add_middleware(SecurityHeaders)
    # Outermost of ours: the pixel and the click skip the layers above (issue 22).
    app.add_middleware(TrackingFastPath)
    app.mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static")
    for name in ROUTER_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            log.debug("router module %s not present yet", name)
            continue
        app.include_router(module.router)
    return app


def freeze_startup_heap() -> None:
    """Take what the imports and the app built out of the cycle collector's walks.

    Why: ~200,000 objects (routes, models, templates, catalogs) live as long as the
    process, yet every full collection walked them all: 100-140 ms with the event loop
    stopped, about once a second under tracking load, which was the whole p99 of the
    pixel (issue 22, docs/performance.md "Tracking"). Garbage is collected first so
    none of it is kept for good. For server processes only (tests build many apps).
    """
    gc.collect()
    gc.freeze()


def serving_app() -> FastAPI:
    """The app of a long-running server process (uvicorn, ``umkm serve``)."""
    app = create_app()
    freeze_startup_heap()
    return app


def app_factory() -> FastAPI:
    """For ``uvicorn --factory web.app:app_factory``."""
    return serving_app()


def __getattr__(name: str) -> FastAPI:
    """``uvicorn web.app:app`` works without building an app at import time (tests build
    their own with their own settings)."""
    if name == "app":
        return serving_app()
    raise AttributeError(name)
