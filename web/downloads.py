"""Report downloads shared by the Dinas dashboard and the owner portal.

Why its own module: staff download the whole programme (``/dinas/laporan/unduh``) and
an owner only their own business (``/portal/laporan``); both answer with the very same
files as ``umkm report``, so the file building lives here and each router only decides
who may ask and for which business. A bad period or grouping is a
:class:`engine.reporting.periods.ReportError`, answered by the app's error handler.
"""

from __future__ import annotations

from datetime import datetime

from fastapi.responses import Response
from sqlalchemy.orm import Session

from engine.common.formatting import WITA
from engine.reporting.build import build_report
from engine.reporting.csv_export import report_csv
from engine.reporting.html import render_report_html
from engine.reporting.pdf import html_to_pdf


def current_month() -> str:
    """``2026-12``: the default period, the month in progress in WITA."""
    now = datetime.now(WITA)
    return f"{now.year:04d}-{now.month:02d}"


def report_file(db: Session, period: str, by: str, fmt: str,
                business_id: int | None) -> Response:
    """HTML (charts, printable), PDF (the same HTML printed by Chromium) or CSV (UTF-8
    with BOM). Without Chromium a PDF request is an Indonesian 503 page, never HTML."""
    if fmt == "csv":
        body = report_csv(build_report(db, period, by, business_id=business_id))
        media, ext = "text/csv; charset=utf-8", "csv"
    elif fmt == "pdf":
        body = html_to_pdf(render_report_html(db, period, by, business_id=business_id))
        media, ext = "application/pdf", "pdf"
    else:
        body = render_report_html(db, period, by, business_id=business_id).encode()
        media, ext = "text/html; charset=utf-8", "html"
    name = f"laporan-{period}-{by}.{ext}".replace("..", "-")
    return Response(body, media_type=media,
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})
