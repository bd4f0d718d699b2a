"""No bulk campaign goes out while the deliverability checklist has a fail (issue 21).

Why: a first campaign to thousands from a domain without SPF/DKIM/DMARC or over http
lands in spam and damages the domain's reputation for months. Every launch path of a
bulk email campaign (``umkm campaign launch``, the demo) asks :func:`check_launch`.

- No fail: the launch goes ahead.
- Sandbox mode (``SOCIAL_MODE=sandbox``: the demo, the tests, a trial install that does not
  reach real customers) only warns: the failures are returned for printing, nothing blocks.
- Production: refused with the failing items named, unless an admin overrides with a
  note, either at the launch (``--override-deliverability "note"``) or on the admin page
  (valid :data:`OVERRIDE_VALID` for the failures it saw). Each override is an
  ``audit_log`` row (action :data:`OVERRIDE_ACTION`) with the note and the failures.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.campaign.schema import CampaignSpec
from engine.common.errors import Conflict, InvalidInput
from engine.config import Settings
from engine.delivery.doctor import Item, run_doctor
from engine.models import AuditLog, utcnow

OVERRIDE_ACTION = "deliverability.override"
OVERRIDE_VALID = timedelta(hours=24)
NOTE_MAX = 500


class DeliverabilityBlocked(Conflict):
    """A bulk launch refused while a checklist item fails (``umkm doctor`` says what to do)."""


@dataclass
class LaunchVerdict:
    """``warnings``: failures let through (sandbox mode or an override)."""

    allowed: bool = True
    warnings: list[Item] = field(default_factory=list)
    overridden: bool = False


def is_bulk(spec: CampaignSpec) -> bool:
    """Marketing email to an audience; transactional mail (orders, invoices) is not bulk."""
    return spec.email is not None and spec.type != "transactional"


def record_override(session: Session, actor: str, note: str, failures: list[Item], *,
                    entity: str = "deliverability", entity_id: str | None = None) -> AuditLog:
    """The admin's override, kept with the failures it was given for (audit trail)."""
    note = note.strip()
    if not note:
        raise InvalidInput("doctor.override.note_required")
    entry = AuditLog(actor=actor, action=OVERRIDE_ACTION, entity=entity, entity_id=entity_id,
                     detail={"note": note[:NOTE_MAX],
                             "failures": sorted(item.key for item in failures)})
    session.add(entry)
    session.flush()
    return entry


def standing_override(session: Session, failures: list[Item],
                      now: datetime | None = None) -> AuditLog | None:
    """A recent admin-page override that covered every one of today's failures."""
    since = (now or utcnow()) - OVERRIDE_VALID
    keys = {item.key for item in failures}
    entries = session.scalars(select(AuditLog).where(
        AuditLog.action == OVERRIDE_ACTION, AuditLog.entity == "deliverability",
        AuditLog.at >= since).order_by(AuditLog.id.desc())).all()
    for entry in entries:
        if keys <= set(entry.detail.get("failures", [])):
            return entry
    return None


def check_launch(session: Session, settings: Settings, spec: CampaignSpec, *, actor: str,
                 override_note: str | None = None,
                 now: datetime | None = None) -> LaunchVerdict:
    """Allow, warn or refuse the launch of ``spec`` (see the module docstring)."""
    if not is_bulk(spec):
        return LaunchVerdict()
    failures = run_doctor(session, settings, now=now).failures
    if not failures:
        return LaunchVerdict()
    if not settings.production:
        return LaunchVerdict(warnings=failures)
    if override_note is not None:
        record_override(session, actor, override_note, failures,
                        entity="campaign", entity_id=spec.id)
        session.commit()
        return LaunchVerdict(warnings=failures, overridden=True)
    if standing_override(session, failures, now) is not None:
        return LaunchVerdict(warnings=failures, overridden=True)
    raise DeliverabilityBlocked("doctor.launch_blocked",
                                items=", ".join(item.title for item in failures))
