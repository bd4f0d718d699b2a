"""The Dinas report pages: ``/dinas/laporan``, one UMKM, one kecamatan, and downloads.

Staff only. Every number comes from :func:`engine.reporting.build.build_report` through
:mod:`engine.reporting.html` and :mod:`engine.reporting.pages`: the web report renders
the very sections of the CLI's HTML report (same SVG charts, same Indonesian number
formats), so what staff see here is what ``umkm report`` prints and the PDF shows.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from engine.common.i18n import t
from engine.reporting.build import DIMENSIONS
from engine.reporting.html import period_title, render_report_sections
from engine.reporting.pages import business_figures, kecamatan_figures
from engine.reporting.periods import Period, ReportError, parse_period, recent_months
from web.auth import SessionRoute, csrf_protect, get_db, page, require_staff
from web.downloads import current_month, report_file

PAGE_MONTHS = 12  # the UMKM and kecamatan pages show a year unless a period is asked

router = APIRouter(prefix="/dinas", route_class=SessionRoute,
                   dependencies=[Depends(csrf_protect), Depends(require_staff)])


def grouping_options() -> list[tuple[str, str]]:
    """``("kecamatan", "per kecamatan")``: what the grouping select offers, in words."""
    return [(d, t(f"report.option.{d}")) for d in DIMENSIONS]


@router.get("/laporan", response_class=HTMLResponse)
def report_page(request: Request, periode: str = "", by: str = "campaign",
                db: Session = Depends(get_db)) -> HTMLResponse:
    """The CLI's HTML report inside the dashboard; a bad period is shown by the form."""
    period = (periode or current_month())[:40]
    sections, error = None, None
    try:
        sections = render_report_sections(db, period, by)
    except ReportError as exc:
        error = str(exc)
    return page(request, "dinas_reports.html", {
        "sections": sections, "error": error, "period": period, "by": by,
        "options": grouping_options(),
    }, status_code=400 if error else 200)


@router.get("/laporan/unduh")
def report_download(periode: str = "", by: str = "campaign", format: str = "html",
                    db: Session = Depends(get_db)) -> Response:
    """The same report as `umkm report`: HTML with charts, CSV, or PDF."""
    return report_file(db, (periode or current_month())[:40], by, format, business_id=None)


def _page_period(periode: str) -> Period:
    return parse_period(periode[:40]) if periode else recent_months(PAGE_MONTHS)


@router.get("/usaha/{business_id}", response_class=HTMLResponse)
def business_page(request: Request, business_id: int, periode: str = "",
                  db: Session = Depends(get_db)) -> HTMLResponse:
    """One UMKM: trend per month, products, channels and campaigns (404 if unknown)."""
    period = _page_period(periode)
    figures = business_figures(db, business_id, period)
    return page(request, "dinas_business_report.html", {
        "f": figures, "period": period, "period_title": period_title(period),
    })


@router.get("/kecamatan/{code}", response_class=HTMLResponse)
def kecamatan_page(request: Request, code: str, periode: str = "",
                   db: Session = Depends(get_db)) -> HTMLResponse:
    """One kecamatan: its UMKM and their figures (404 if the code is not in TTS)."""
    period = _page_period(periode)
    figures = kecamatan_figures(db, code, period)
    return page(request, "dinas_kecamatan_report.html", {
        "f": figures, "period": period, "period_title": period_title(period),
    })
