"""``/docs``, ``/redoc`` and ``/openapi.json``: the API reference, for Dinas staff only.

FastAPI's own pages load Swagger UI from a CDN and are public; these are served by the
installation itself (a server-rendered list of operations, no script) and need a
logged-in Dinas account, like the rest of the dashboard. ``/redoc`` points to ``/docs``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from engine.models import User
from web.auth import SessionRoute, csrf_protect, page, require_staff

HTTP_METHODS = ("get", "post", "put", "patch", "delete")

router = APIRouter(route_class=SessionRoute, dependencies=[Depends(csrf_protect)],
                   include_in_schema=False)


def operations(spec: dict[str, Any]) -> list[dict[str, str]]:
    """One row per operation of the spec: method, path, summary (what the page lists)."""
    rows = []
    for path, item in sorted(spec.get("paths", {}).items()):
        for method in HTTP_METHODS:
            if method in item:
                rows.append({"method": method.upper(), "path": path,
                             "summary": str(item[method].get("summary", ""))})
    return rows


@router.get("/openapi.json")
def openapi_json(request: Request, user: User = Depends(require_staff)) -> Response:
    return JSONResponse(request.app.openapi())


@router.get("/docs", response_class=HTMLResponse)
def docs_page(request: Request, user: User = Depends(require_staff)) -> HTMLResponse:
    spec = request.app.openapi()
    return page(request, "api_docs.html", {"title": spec["info"]["title"],
                                           "version": spec["info"]["version"],
                                           "operations": operations(spec)})


@router.get("/redoc")
def redoc(user: User = Depends(require_staff)) -> Response:
    return RedirectResponse("/docs", status_code=303)
