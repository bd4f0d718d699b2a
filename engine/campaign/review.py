"""Four eyes on a campaign: staff submit a saved revision, a ``dinas_admin`` approves it
(and launches it) or sends it back with a note (issue 18).

Why the state lives on the revision: a review is of an exact text. A new save is a new
revision in ``draft``, so approving revision 3 never approves the edits of revision 4,
and the run names the revision it was launched from. An author never approves or sends
back their own revision (:class:`OwnReview`). Every step writes an ``audit_log`` row.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.campaign.revisions import diff, latest
from engine.common.errors import BadRequest, Conflict, EngineError, NotFound
from engine.common.i18n import t
from engine.models import AuditLog, CampaignRevision, utcnow

DRAFT, SUBMITTED, APPROVED, RETURNED, LAUNCHED = (
    "draft", "submitted", "approved", "returned", "launched")
STATES = (DRAFT, SUBMITTED, APPROVED, RETURNED, LAUNCHED)
NOTE_MAX = 2000
LISTED = 100


class OwnReview(EngineError):
    """The author of a revision tried to review it (the four-eyes rule): 403."""

    http_status = 403


@dataclass(frozen=True)
class ReviewView:
    """A submitted revision with the diff against the last approved or launched one."""

    revision: CampaignRevision
    baseline: CampaignRevision | None
    diff: str


def state_label(state: str) -> str:
    """``menunggu tinjauan``, ``disetujui``, ... in the reader's language."""
    return t(f"studio.review.state.{state}") if state in STATES else state


def audit(session: Session, actor: str, action: str, revision: CampaignRevision,
          **detail: object) -> None:
    """One ``audit_log`` row about a revision (its campaign and number in the detail)."""
    session.add(AuditLog(actor=actor, action=action, entity="campaign_revision",
                         entity_id=str(revision.id),
                         detail={"campaign": revision.campaign_key,
                                 "number": revision.number, **detail}))


def get(session: Session, revision_id: str | int) -> CampaignRevision:
    """The revision an URL names, or a 404 (also for a non-number)."""
    text = str(revision_id)
    row = session.get(CampaignRevision, int(text)) if text.isdigit() and len(text) < 19 \
        else None
    if row is None:
        raise NotFound("studio.no_revision", value=text[:40])
    return row


def submit(session: Session, revision: CampaignRevision, actor: str) -> None:
    """Ask for review: only the campaign's newest revision, from draft or sent back."""
    newest = latest(session, revision.campaign_key)
    if newest is None or newest.id != revision.id:
        raise Conflict("studio.review.not_latest", number=revision.number)
    if revision.review not in (DRAFT, RETURNED):
        raise Conflict("studio.review.bad_state", number=revision.number,
                       state=state_label(revision.review))
    revision.review = SUBMITTED
    audit(session, actor, "campaign.submit", revision)


def _decide(revision: CampaignRevision, actor: str) -> None:
    if revision.review != SUBMITTED:
        raise Conflict("studio.review.bad_state", number=revision.number,
                       state=state_label(revision.review))
    if revision.author == actor:
        raise OwnReview("studio.review.own")


def approve(session: Session, revision: CampaignRevision, actor: str) -> None:
    """The second pair of eyes: approved (the caller launches it)."""
    _decide(revision, actor)
    revision.review, revision.reviewer, revision.reviewed_at = APPROVED, actor, utcnow()
    revision.review_note = None
    audit(session, actor, "campaign.approve", revision)


def send_back(session: Session, revision: CampaignRevision, actor: str, note: str) -> None:
    """Back to the author with a note they see on the editor and the revision page."""
    _decide(revision, actor)
    note = note.strip()
    if not note:
        raise BadRequest("studio.review.note_required")
    revision.review, revision.reviewer, revision.reviewed_at = RETURNED, actor, utcnow()
    revision.review_note = note[:NOTE_MAX]
    audit(session, actor, "campaign.return", revision, note=note[:NOTE_MAX])


def mark_launched(session: Session, revision: CampaignRevision, actor: str,
                  run_id: int | None) -> None:
    revision.review = LAUNCHED
    audit(session, actor, "campaign.launch", revision, run=run_id)


def baseline(session: Session, revision: CampaignRevision) -> CampaignRevision | None:
    """The newest earlier revision that was approved or launched (what the reviewer saw
    last), else ``None`` (the whole text is new)."""
    return session.scalars(
        select(CampaignRevision)
        .where(CampaignRevision.campaign_key == revision.campaign_key,
               CampaignRevision.number < revision.number,
               CampaignRevision.review.in_([APPROVED, LAUNCHED]))
        .order_by(CampaignRevision.number.desc()).limit(1)).first()


def review_view(session: Session, revision: CampaignRevision) -> ReviewView:
    base = baseline(session, revision)
    before = base.yaml_text if base is not None else ""
    text = "".join(diff(before, revision.yaml_text, revision.number).splitlines(True))
    if base is not None:
        text = text.replace(f"--- revisi {revision.number - 1}", f"--- revisi {base.number}", 1)
    else:
        text = text.replace(f"--- revisi {revision.number - 1}", "--- (baru)", 1)
    return ReviewView(revision, base, text)


def submitted(session: Session) -> list[CampaignRevision]:
    """Revisions waiting for an admin, oldest first (first come, first reviewed)."""
    return list(session.scalars(select(CampaignRevision)
                                .where(CampaignRevision.review == SUBMITTED)
                                .order_by(CampaignRevision.created_at, CampaignRevision.id)
                                .limit(LISTED)))
