"""``/dinas/rencana``: the annual plan of Pasal 11-12, target vs realisation per quarter.

Staff read it; only ``dinas_admin`` changes targets (the plan is the Dinas's commitment
to the Bupati, Pasal 12(1)). The section shown is the same HTML the monitoring report
embeds (:func:`engine.reporting.html.render_plan_section`), so page and report agree.
Budget lines and partners come with the YAML plan, pasted in the page or loaded with
``umkm rencana set``: the same parser, the same ``line:column`` messages.
"""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from engine.common.errors import BadRequest
from engine.common.i18n import t
from engine.models import User
from engine.reporting.html import render_plan_section
from engine.reporting.periods import local_now_date
from engine.reporting.plan_file import (
    INDICATORS,
    MAX_YEAR,
    MIN_YEAR,
    QUARTERS,
    indicator_label,
    parse_plan_text,
    save_plan,
    set_targets,
)
from engine.reporting.programme_plan import monitor_plan
from web.auth import SessionRoute, csrf_protect, get_db, page, require_admin, require_staff

PATH = "/dinas/rencana"
MAX_TARGET = 10**12
MAX_YAML = 200_000

router = APIRouter(prefix=PATH, route_class=SessionRoute,
                   dependencies=[Depends(csrf_protect), Depends(require_staff)])


def _year(value: str) -> int:
    """The year asked for (this year when empty); anything else than a plan year is 400."""
    text = (value or "").strip()
    if text and not (text.isdigit() and len(text) == 4):
        raise BadRequest("plan.bad_year", year=text[:20], low=MIN_YEAR, high=MAX_YEAR)
    year = int(text) if text else local_now_date().year
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise BadRequest("plan.bad_year", year=year, low=MIN_YEAR, high=MAX_YEAR)
    return year


@router.get("", response_class=HTMLResponse)
def plan_page(request: Request, tahun: str = "", msg: str = "",
              user: User = Depends(require_staff),
              db: Session = Depends(get_db)) -> HTMLResponse:
    year = _year(tahun)
    monitoring = monitor_plan(db, year)
    rows = [{"key": i.key, "label": i.label, "targets": i.targets}
            for i in monitoring.indicators]
    return page(request, "dinas_plan.html", {
        "year": year, "section": render_plan_section(monitoring), "rows": rows,
        "has_plan": monitoring.plan is not None, "message": msg[:200],
        "can_edit": user.role == "dinas_admin", "quarters": range(1, QUARTERS + 1),
    })


def _target(raw: str, key: str, quarter: int) -> int:
    text = raw.strip().replace(".", "")
    if not text:
        return 0
    if not text.isdigit() or int(text) > MAX_TARGET:
        raise BadRequest("plan.web.bad_number", indicator=indicator_label(key), q=quarter,
                         value=raw[:20])
    return int(text)


@router.post("/{year}")
async def save_targets(request: Request, year: str, user: User = Depends(require_admin),
                       db: Session = Depends(get_db)) -> Response:
    """Replace the year's quarterly targets from the grid (empty cells count 0)."""
    plan_year = _year(year)
    form = await request.form()
    targets: dict[str, list[int]] = {}
    for key in INDICATORS:
        values = [str(form.get(f"{key}_{q}", "") or "") for q in range(1, QUARTERS + 1)]
        targets[key] = [_target(v, key, q) for q, v in enumerate(values, start=1)]
    set_targets(db, plan_year, targets, user.username)
    db.commit()
    query = urlencode({"tahun": plan_year, "msg": t("plan.web.saved", year=plan_year)})
    return RedirectResponse(f"{PATH}?{query}", status_code=303)


@router.post("/{year}/yaml")
def save_yaml(year: str, plan_yaml: str = Form(""), user: User = Depends(require_admin),
              db: Session = Depends(get_db)) -> Response:
    """Replace the whole plan (targets, budget, partners) with the pasted YAML."""
    plan_year = _year(year)
    spec = parse_plan_text(plan_yaml[:MAX_YAML], "rencana.yaml", plan_year)
    save_plan(db, plan_year, spec, user.username)
    db.commit()
    query = urlencode({"tahun": plan_year, "msg": t("plan.web.saved", year=plan_year)})
    return RedirectResponse(f"{PATH}?{query}", status_code=303)
