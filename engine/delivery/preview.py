"""``campaign preview``: the exact HTML and text that N sample recipients would get.

Samples are real audience members when the database has some (so staff review real
names and real recommendations), otherwise the built-in sample recipient. Links point
at their UTM-tagged targets; nothing is written to the database.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.campaign.audience import iter_audience_ids
from engine.campaign.personalize import Recommender
from engine.campaign.schema import CampaignSpec
from engine.config import get_settings
from engine.delivery.context import (
    campaign_context,
    content_context,
    customer_context,
    per_message,
    utm,
    with_agenda,
)
from engine.engagement.tracking import PreviewTracker
from engine.message.render import compile_email, render_email
from engine.message.templating import DINAS, sample_context
from engine.models import Customer, utcnow
from engine.social.plan import campaign_products


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40] or "penerima"


def _sample_customers(session: Session, spec: CampaignSpec, n: int,
                      customer_id: int | None = None) -> list[Customer]:
    """Up to ``n`` audience members; only ``customer_id`` when it is in the audience."""
    audience = spec.audience.model_dump(mode="json", by_alias=True, exclude_none=True)
    ids: list[int] = []
    for batch in iter_audience_ids(session, audience, campaign_type=spec.type, channel="email",
                                   now=utcnow(), batch_size=n if customer_id is None else 1000):
        if customer_id is None:
            ids.extend(batch)
            break
        if customer_id in batch:
            ids = [customer_id]
            break
    if not ids:
        return []
    return list(session.scalars(select(Customer).where(Customer.id.in_(ids[:n]))))


def audience_sample(session: Session, spec: CampaignSpec, n: int) -> list[Customer]:
    """The first ``n`` audience members (the studio's recipient picker)."""
    return _sample_customers(session, spec, n)


def _variants(spec: CampaignSpec) -> list[tuple[str, str, str]]:
    """(name, template, subject) of every A/B variant, as the run context compiles them."""
    email = spec.email
    if email is None:
        return []  # a social-only campaign has no mail to preview
    return [("A", email.template, email.subject)] + [
        (v.name or chr(ord("B") + i), v.template or email.template, v.subject or email.subject)
        for i, v in enumerate(email.variants)]


def _base_context(spec: CampaignSpec, lang: str) -> dict[str, Any]:
    """The sample context with this campaign's own id, offer, content and trigger."""
    base = sample_context(spec.type, lang)
    base.update({"campaign": campaign_context(spec), "dinas": DINAS})
    content = content_context(spec)
    if content["articles"] or content["trainings"]:
        base.update({"articles": content["articles"], "trainings": content["trainings"]})
    base["offer"] = content["offer"]
    if spec.trigger and spec.trigger.inactive_days:
        base["days_inactive"] = spec.trigger.inactive_days
    if spec.type != "transactional":
        base["order"] = None
    return base


def _people(session: Session, spec: CampaignSpec, n: int, base: dict[str, Any],
            base_url: str, customer_id: int | None = None) -> list[dict[str, Any]]:
    """Real sample recipients with their recommendations, else the built-in sample."""
    catalog = campaign_products(session, spec)  # the same filters as the real send
    count = per_message(spec)
    customers = _sample_customers(session, spec, n, customer_id)
    recs: dict[int, Any] = {}
    if catalog and customers and spec.type != "newsletter":  # as the run context does
        recs = Recommender.build(session, catalog, utcnow()).for_customers(
            session, [c.id for c in customers], count)
    people: list[dict[str, Any]] = []
    for c in customers:
        products = recs[c.id] if c.id in recs else catalog[:count]
        people.append({"customer": customer_context(c),
                       "products": [p.as_context(base_url) for p in products]})
    if not people:
        people.append({"customer": base["customer"], "products": base["products"]})
    return people


@dataclass(frozen=True)
class EmailPreview:
    """One variant of the mail for one recipient, as it would be sent."""

    recipient: str
    variant: str
    subject: str
    preheader: str
    html: str
    text: str


def render_previews(session: Session, spec: CampaignSpec, n: int,
                    customer_id: int | None = None) -> list[EmailPreview]:
    """Every variant for up to ``n`` recipients (or the one audience member
    ``customer_id``; the built-in sample when it is not in the audience)."""
    settings = get_settings()
    base = _base_context(spec, settings.lang if settings.lang in ("id", "en") else "id")
    if spec.type == "newsletter":  # the Dinas trainings the real send adds (Pasal 8)
        base.update(with_agenda(session, spec, {"trainings": base.get("trainings", [])},
                                settings.base_url))
    people = _people(session, spec, n, base, settings.base_url, customer_id)
    preheader = spec.email.preheader if spec.email else None
    tracker = PreviewTracker(utm(spec))
    result: list[EmailPreview] = []
    for person in people:
        for name, template, subject in _variants(spec):
            compiled = compile_email(template, subject, preheader=preheader)
            rendered = render_email(compiled, {**base, **person}, tracker)
            result.append(EmailPreview(str(person["customer"]["name"]), name,
                                       rendered.subject, rendered.preheader, rendered.html,
                                       rendered.text))
    return result


def write_previews(session: Session, spec: CampaignSpec, out: Path, n: int) -> list[Path]:
    """Render every variant for up to ``n`` recipients into ``out``; return the files."""
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    index = 0
    for preview in render_previews(session, spec, n):
        index += preview.variant == "A"  # variant A comes first for each recipient
        stem = f"{index:02d}-{_slug(preview.recipient)}-{preview.variant}"
        html_path, text_path = out / f"{stem}.html", out / f"{stem}.txt"
        html_path.write_text(preview.html, encoding="utf-8")
        text_path.write_text(f"Subjek: {preview.subject}\n\n{preview.text}", encoding="utf-8")
        written += [html_path, text_path]
    return written
