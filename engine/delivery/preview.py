"""``campaign preview``: the exact HTML and text that N sample recipients would get.

Samples are real audience members when the database has some (so staff review real
names and real recommendations), otherwise the built-in sample recipient. Links point
at their UTM-tagged targets; nothing is written to the database.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.campaign.audience import iter_audience_ids
from engine.campaign.catalog import eligible_products
from engine.campaign.personalize import Recommender
from engine.config import get_settings
from engine.engagement.tracking import PreviewTracker
from engine.message.render import compile_email, render_email
from engine.message.templating import DINAS, sample_context
from engine.models import Customer, utcnow


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40] or "penerima"


def _sample_customers(session: Session, spec: dict[str, Any], n: int) -> list[Customer]:
    ids: list[int] = []
    for batch in iter_audience_ids(session, spec.get("audience") or {},
                                   campaign_type=spec["type"], channel="email", now=utcnow(),
                                   batch_size=n):
        ids.extend(batch)
        break
    if not ids:
        return []
    return list(session.scalars(select(Customer).where(Customer.id.in_(ids[:n]))))


def write_previews(session: Session, spec: dict[str, Any], out: Path, n: int) -> list[Path]:
    """Render every variant for up to ``n`` recipients into ``out``; return the files."""
    from engine.delivery.dispatch import _content_context, _customer_context, _utm

    settings = get_settings()
    out.mkdir(parents=True, exist_ok=True)
    email = (spec.get("channels") or {}).get("email") or {}
    variants = [("A", email.get("template"), email.get("subject"))] + [
        (v.get("name") or chr(ord("B") + i), v.get("template") or email.get("template"),
         v.get("subject") or email.get("subject"))
        for i, v in enumerate(email.get("variants") or [])]
    products_spec = spec.get("products") or {}
    catalog = eligible_products(  # the same filters as the real send (engine.delivery.dispatch)
        session, campaign_key=spec["id"], campaign_tags=spec.get("tags") or [],
        opt_in=products_spec.get("opt_in", "required"), category=products_spec.get("category"),
        kecamatan=products_spec.get("kecamatan"), max_price=products_spec.get("max_price"),
        featured=products_spec.get("featured") or ())
    per_message = int(products_spec.get("per_message") or 3)
    customers = _sample_customers(session, spec, n)
    recs: dict[int, Any] = {}
    if catalog and customers and spec["type"] != "newsletter":  # as engine.delivery.dispatch does
        recs = Recommender.build(session, catalog, utcnow()).for_customers(
            session, [c.id for c in customers], per_message)
    base = sample_context(spec["type"], settings.lang if settings.lang in ("id", "en") else "id")
    base.update({"campaign": {"id": spec["id"], "name": spec["name"], "type": spec["type"]},
                 "dinas": DINAS})
    content = _content_context(spec)
    if content["articles"] or content["trainings"]:
        base.update({"articles": content["articles"], "trainings": content["trainings"]})
    base["offer"] = content["offer"]
    trigger = (spec.get("schedule") or {}).get("trigger") or {}
    if trigger.get("inactive_days"):
        base["days_inactive"] = trigger["inactive_days"]
    if spec["type"] != "transactional":
        base["order"] = None
    tracker = PreviewTracker(_utm(spec))
    people: list[dict[str, Any]] = []
    for c in customers:
        products = recs[c.id] if c.id in recs else catalog[:per_message]
        people.append({"customer": _customer_context(c),
                       "products": [p.as_context(settings.base_url) for p in products]})
    if not people:
        people.append({"customer": base["customer"], "products": base["products"]})
    written: list[Path] = []
    for index, person in enumerate(people, start=1):
        for name, template, subject in variants:
            compiled = compile_email(str(template), str(subject), preheader=email.get("preheader"))
            rendered = render_email(compiled, {**base, **person}, tracker)
            stem = f"{index:02d}-{_slug(person['customer']['name'])}-{name}"
            html_path, text_path = out / f"{stem}.html", out / f"{stem}.txt"
            html_path.write_text(rendered.html, encoding="utf-8")
            text_path.write_text(f"Subjek: {rendered.subject}\n\n{rendered.text}",
                                 encoding="utf-8")
            written += [html_path, text_path]
    return written
