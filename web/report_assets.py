"""``/aset/laporan.css``: the report's stylesheet for the web pages that show report parts.

Why a route: the site's CSP allows styles from the site only (no inline ``<style>``), and
the stylesheet lives with the report templates (``templates/reports/report.css``), where
the self-contained HTML file inlines the same rules; one file, two ways of delivering it.
Public like ``/static``: it holds no data.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from engine.reporting.html import report_css

router = APIRouter()


@router.get("/aset/laporan.css")
def report_stylesheet() -> Response:
    return Response(report_css(), media_type="text/css; charset=utf-8",
                    headers={"Cache-Control": "public, max-age=3600"})
