"""The FastAPI application: tracking, unsubscribe, API, owner portal, dashboard, showcase.

Server-rendered pages (Jinja2), light enough for a phone on a slow connection. Each
concern is a router in its own module; this file only assembles them.
"""

from __future__ import annotations

import importlib
import logging

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from engine.config import Settings, get_settings
from web.pages import STATIC_DIR

log = logging.getLogger(__name__)

# Router modules, in order; each exposes ``router`` (an APIRouter).
ROUTER_MODULES = (
    "web.tracking_routes",   # /t/o, /t/c, /u (RFC 8058), preference centre
    "web.bounce_routes",     # bounce/complaint webhook
    "web.whatsapp_routes",   # WhatsApp Cloud API webhook: opt-outs, 24-hour window
    "web.api",               # JSON API (order events, consent), OpenAPI
    "web.auth",              # login/logout, sessions, CSRF
    "web.portal",            # UMKM owner portal
    "web.dashboard",         # Dinas dashboard
    "web.showcase",          # public product catalogue (Pasal 7(1))
)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    app = FastAPI(
        title="UMKM TTS — mesin pemasaran multi-kanal",
        version="0.1.0",
        description="API Dinas Koperasi & UMKM Kabupaten Timor Tengah Selatan "
                    "(Perbup TTS 17/2025).",
    )
    app.state.settings = settings
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


def app_factory() -> FastAPI:
    """For ``uvicorn --factory web.app:app_factory``."""
    return create_app()


def __getattr__(name: str) -> FastAPI:
    """``uvicorn web.app:app`` works without building an app at import time (tests build
    their own with their own settings)."""
    if name == "app":
        return create_app()
    raise AttributeError(name)
