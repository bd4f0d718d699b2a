"""``/dinas/dmarc``: what the DMARC aggregate reports say, for Dinas admins and staff.

Per day and sending IP: the volume receivers saw and the share aligned on SPF and DKIM
(:func:`engine.reporting.dmarc_summary.summarize`, the same figures as ``umkm dmarc
report``). An IP that is not one of the relay's is flagged with an alert line: a
forgotten sender to add to SPF_SOURCES, or someone sending as the domain.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from engine.common.formatting import persen, tanggal_pendek
from engine.common.i18n import get_lang
from engine.reporting.dmarc_summary import summarize
from web.auth import SessionRoute, get_db, page, require_staff, settings_of

PATH = "/dinas/dmarc"
DAY_CHOICES = (7, 30, 90)
DEFAULT_DAYS = 30

router = APIRouter(prefix=PATH, route_class=SessionRoute, dependencies=[Depends(require_staff)])


def _days(raw: str) -> int:
    """One of the offered periods; anything else (typed by hand) is the default."""
    return int(raw) if raw.isdigit() and int(raw) in DAY_CHOICES else DEFAULT_DAYS


@router.get("", response_class=HTMLResponse)
def dmarc_summary(request: Request, days: str = "", db: Session = Depends(get_db)
                  ) -> HTMLResponse:
    settings = settings_of(request)
    period = _days(days)
    summary = summarize(db, settings, period)
    lang = get_lang()
    lines = [{"day": tanggal_pendek(line.day, lang), "ip": line.source_ip,
              "volume": line.volume, "spf": persen(line.spf_rate, lang, 1),
              "dkim": persen(line.dkim_rate, lang, 1), "known": line.known,
              "spf_ok": line.spf_pass == line.volume, "dkim_ok": line.dkim_pass == line.volume}
             for line in summary.lines]
    return page(request, "dinas_dmarc.html", {
        "lines": lines, "unknown": summary.unknown, "reports": summary.reports,
        "days": period, "choices": DAY_CHOICES, "domain": settings.from_domain})
