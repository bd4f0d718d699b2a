"""Page rendering shared by every router: one Jinja2 environment (autoescaped), the
engine's Indonesian formatting filters and the i18n ``t`` function, plus the small view
helpers more than one router shows (the Pasal 10 verdict)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from engine.common import formatting
from engine.common.i18n import get_lang, install_jinja
from engine.models import Business
from engine.umkm.eligibility import Verdict, check_business

WEB_DIR = Path(__file__).resolve().parent
STATIC_DIR = WEB_DIR / "static"
templates = Jinja2Templates(directory=str(WEB_DIR / "templates"))
templates.env.filters["rupiah"] = formatting.rupiah
templates.env.filters["tanggal"] = formatting.tanggal
templates.env.filters["tanggal_pendek"] = formatting.tanggal_pendek
templates.env.filters["jam"] = formatting.jam
templates.env.filters["angka"] = lambda value: formatting.angka(value, get_lang())
install_jinja(templates.env)


def render(request: Request, name: str, context: dict[str, Any] | None = None,
           status_code: int = 200) -> HTMLResponse:
    """Render a page; ``lang`` and the CSRF token (when a session has one) are always set."""
    ctx = {"lang": get_lang(), "csrf_token": getattr(request.state, "csrf_token", "")}
    ctx.update(context or {})
    return templates.TemplateResponse(request, name, ctx, status_code=status_code)


def verdict_of(business: Business) -> Verdict:
    """In the page's language: the cache is Indonesian, English is recomputed.

    Shared by the owner portal and the Dinas verification queue, so both always show
    the same verdict for the same business.
    """
    if get_lang() == "id" and business.eligibility:
        return Verdict.from_dict(business.eligibility)
    return check_business(business, lang=get_lang())
