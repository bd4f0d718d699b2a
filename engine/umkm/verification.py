"""The Dinas verification of a UMKM: the owner submits, an admin approves or rejects.

One code path for every caller (dashboard today, the CLI tomorrow) so the owner's notice
(:mod:`engine.delivery.owner_notice`) and the audit trail never depend on which screen
decided. The staff's reason is kept in the audit log entry of the decision, which is
where the portal reads it back for the owner.

Functions ``flush`` but never ``commit``: the caller owns the unit of work.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.common.errors import Conflict
from engine.models import AuditLog, Business, Verification
from engine.umkm import businesses

DECISION_ACTION = "business.verify"
SUBMIT_ACTION = "business.submit"
# States from which the owner may (re)send the business for verification.
SUBMITTABLE = (Verification.draft, Verification.rejected)


@dataclass(frozen=True)
class Decision:
    """The latest staff decision on a business, as the owner is shown it."""

    verified: bool
    note: str


def submit(db: Session, business: Business, *, actor: str) -> None:
    """Put a draft (or rejected, since corrected) business into the Dinas queue."""
    if business.verification not in SUBMITTABLE:
        raise Conflict("signup.err.not_submittable")
    business.verification = Verification.pending
    db.add(AuditLog(actor=actor, action=SUBMIT_ACTION, entity="business",
                    entity_id=str(business.id), detail={}))
    db.flush()


def decide(db: Session, business: Business, *, approve: bool, binaan: bool,
           group: str | None, note: str | None, actor: str) -> None:
    """Approve (confirming or setting binaan) or reject a business.

    Rejecting also withdraws binaan status, so the cached Pasal 10 verdict fails and the
    business leaves every catalogue and the public showcase at once.
    """
    # The decision first: set_binaan refreshes the cached verdict, which reads it (a business
    # held for a changed identity becomes eligible again only once it is verified).
    business.verification = Verification.verified if approve else Verification.rejected
    businesses.set_binaan(db, business, binaan if approve else False, actor, group=group)
    db.add(AuditLog(actor=actor, action=DECISION_ACTION, entity="business",
                    entity_id=str(business.id),
                    detail={"decision": business.verification.value, "binaan": business.binaan,
                            "note": (note or "")[:500]}))
    db.flush()


def latest_decision(db: Session, business: Business) -> Decision | None:
    """The newest decision, if the business is in the state that decision left it in."""
    if business.verification not in (Verification.verified, Verification.rejected):
        return None
    entry = db.scalars(select(AuditLog).where(
        AuditLog.action == DECISION_ACTION, AuditLog.entity == "business",
        AuditLog.entity_id == str(business.id)).order_by(AuditLog.id.desc())).first()
    if entry is None:
        return None
    detail = entry.detail or {}
    return Decision(detail.get("decision") == Verification.verified.value,
                    str(detail.get("note") or ""))
