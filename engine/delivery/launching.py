"""The one launch path of a campaign: ``umkm campaign launch`` and the studio's
"Setujui & luncurkan" both come through :func:`launch` (issue 18).

Why one function: the deliverability guard (:func:`engine.delivery.launch_guard.check_launch`)
must stand in front of every bulk launch, and the run must name the revision it was
launched from; a second copy of these three steps in the web layer would drift.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.campaign.schema import CampaignSpec
from engine.config import Settings
from engine.delivery import scheduler
from engine.delivery.launch_guard import LaunchVerdict, check_launch
from engine.models import CampaignRevision


def launch(session: Session, settings: Settings, spec: CampaignSpec, source: str | None, *,
           actor: str, start_now: bool = False, override_note: str | None = None,
           revision_id: int | None = None, hand_over: bool = False,
           ) -> tuple[scheduler.LaunchResult, LaunchVerdict]:
    """Guard, then register and materialise the run; the run records ``revision_id``.

    ``hand_over``: the caller hands a run that starts now to the broker itself
    (:func:`engine.delivery.enqueue.launch_batches`); see :func:`scheduler.launch`.

    Raises :class:`~engine.delivery.launch_guard.DeliverabilityBlocked` before anything
    is written when the checklist fails in production without an override.
    """
    verdict = check_launch(session, settings, spec, actor=actor, override_note=override_note)
    result = scheduler.launch(session, spec, source, start_now=start_now,
                              hand_over=hand_over)
    run = result.run
    if run is not None and revision_id is not None and (result.created
                                                        or run.revision_id is None):
        run.revision_id = revision_id
        session.commit()
    return result, verdict


def revision_of_text(session: Session, campaign_key: str, text: str) -> int | None:
    """The newest saved revision whose text is exactly ``text`` (a launched file that
    the studio or ``umkm campaign sync`` knows), else ``None``."""
    return session.scalars(select(CampaignRevision.id)
                           .where(CampaignRevision.campaign_key == campaign_key,
                                  CampaignRevision.yaml_text == text)
                           .order_by(CampaignRevision.number.desc()).limit(1)).first()
