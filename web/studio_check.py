"""What the studio's editor asks the server while staff type: problems, plan, preview.

Why the server and not JavaScript: the checks are the ones ``umkm campaign validate``
runs (:func:`engine.campaign.loader.check_text`: YAML, schema, type rules, templates,
plus the photo and TikTok checks of post channels), and the side panel shows what
``umkm campaign plan`` computes (:func:`engine.delivery.scheduler.plan`). A browser copy
of those rules would drift from the CLI's within a month.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from engine.campaign.loader import CampaignError, check_text, locate_text
from engine.campaign.schema import CampaignSpec
from engine.common.errors import BadRequest
from engine.common.formatting import jam, rupiah, tanggal
from engine.common.i18n import t
from engine.config import Settings
from engine.delivery import scheduler
from engine.delivery.preview import audience_sample, render_previews
from engine.delivery.preview_social import post_previews, share_kit_text
from engine.message.templating import TemplateProblem
from engine.social.plan import post_platforms, post_problems

EDITOR_FILE = "kampanye.yaml"
MAX_YAML_CHARS = 200_000
# The body of a check: the YAML plus the form's other fields, URL-encoded (up to 3x).
MAX_BODY_BYTES = 3 * MAX_YAML_CHARS + 16 * 1024
STARTERS_DIR = Path(__file__).resolve().parents[1] / "campaigns" / "starters"
STARTERS = ("promotional", "transactional", "newsletter", "retention", "personalized",
            "social", "whatsapp")
SAMPLE_SIZE = 20
PLAN_PRODUCTS = 15


def starter_text(name: str) -> str:
    """The YAML of one gallery starter; an unknown name is a plain 400."""
    if name not in STARTERS:
        raise BadRequest("studio.bad_starter", value=name[:40], choices=", ".join(STARTERS))
    return (STARTERS_DIR / f"{name}.yaml").read_text(encoding="utf-8")


def yaml_of(text: str) -> str:
    """The editor's text, refused when longer than a campaign file may be."""
    if len(text) > MAX_YAML_CHARS:
        raise BadRequest("studio.too_long", limit=MAX_YAML_CHARS)
    return text


def _suggestion(message: str) -> str:
    """The "apakah maksud Anda 'x'" part of a message (the name), or ``""``."""
    prefix, _, suffix = t("campaign.hint", name="\0").partition("\0")
    match = re.search(re.escape(prefix.strip(", ")) + r"(.*?)" + re.escape(suffix), message)
    return match.group(1) if match else ""


def error_json(error: CampaignError) -> dict[str, Any]:
    return {"line": error.line, "column": error.column, "message": error.message,
            "suggestion": _suggestion(error.message)}


def validate(db: Session, settings: Settings, text: str, *, media: bool = True
             ) -> tuple[CampaignSpec | None, list[CampaignError]]:
    """``umkm campaign validate`` of one text, with its database checks for post channels
    (``media=False``: without them, as ``umkm campaign preview`` loads a file)."""
    spec, errors = check_text(text, EDITOR_FILE)
    if media and spec is not None and post_platforms(spec):
        errors = [_located(text, keys, message)
                  for keys, message in post_problems(db, spec, settings)]
        errors.sort(key=lambda e: (e.line, e.column))
        spec = spec if not errors else None
    return spec, errors


def _located(text: str, keys: tuple[str, ...], message: str) -> CampaignError:
    position = locate_text(text, keys)
    return CampaignError(EDITOR_FILE, position.line, position.column, message)


def plan_json(db: Session, spec: CampaignSpec) -> dict[str, Any]:
    """Audience, products and first send, as ``umkm campaign plan`` shows them."""
    report = scheduler.plan(db, spec)
    first = report.first_send
    return {
        "audience": int(getattr(report.audience, "total", 0)),
        "next_send": f"{tanggal(first)} {jam(first)}" if first else t("studio.on_trigger"),
        "products": [{"name": p.name, "price": rupiah(p.price), "business": p.business_name}
                     for p in report.products[:PLAN_PRODUCTS]],
        "product_count": len(report.products),
        "channels": report.channels,
    }


def check_json(db: Session, settings: Settings, text: str) -> dict[str, Any]:
    """The answer to one editor change: problems, else the plan."""
    spec, errors = validate(db, settings, text)
    if spec is None:
        return {"valid": False, "errors": [error_json(e) for e in errors]}
    return {"valid": True, "errors": [], "id": spec.id, "type": spec.type,
            "plan": plan_json(db, spec)}


def recipients(db: Session, spec: CampaignSpec) -> list[dict[str, Any]]:
    """The first audience members, for the preview's recipient picker."""
    return [{"id": c.id, "name": c.name or t("studio.no_name")}
            for c in audience_sample(db, spec, SAMPLE_SIZE)]


def preview_json(db: Session, spec: CampaignSpec, customer_id: int | None) -> dict[str, Any]:
    """Email (every variant), posts with their limits and the share-kit text."""
    try:
        emails = render_previews(db, spec, 1, customer_id)
        posts = post_previews(db, spec)
        kit = share_kit_text(db, spec)
    except TemplateProblem as exc:
        return {"ok": False, "error": str(exc)}
    return {
        "ok": True, "recipients": recipients(db, spec),
        "emails": [{"recipient": e.recipient, "variant": e.variant, "subject": e.subject,
                    "preheader": e.preheader, "html": e.html, "text": e.text}
                   for e in emails],
        "posts": [{"platform": p.platform, "text": p.text, "limit": p.limit,
                   "length": len(p.text), "too_long": p.too_long} for p in posts],
        "share_kit": kit,
    }
