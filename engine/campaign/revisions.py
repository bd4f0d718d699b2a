"""Saved versions of a campaign's YAML (the studio's revisions), with their diffs.

Why every save is a new row and never an update: the four-eyes review reads what
changed since the version it saw, and a run must be able to name the exact text it was
launched from. Saving the same text twice makes no new revision (nothing changed).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.models import CampaignRevision

MAX_LISTED = 50


@dataclass(frozen=True)
class RevisionView:
    """A revision with the unified diff against the one before it (``""`` for the first)."""

    revision: CampaignRevision
    diff: str


def latest(session: Session, campaign_key: str) -> CampaignRevision | None:
    return session.scalars(select(CampaignRevision)
                           .where(CampaignRevision.campaign_key == campaign_key)
                           .order_by(CampaignRevision.number.desc()).limit(1)).first()


def save(session: Session, campaign_key: str, yaml_text: str, author: str,
         base_hash: str | None = None) -> tuple[CampaignRevision, bool]:
    """(the revision, whether it is new); the caller commits.

    ``base_hash``: the hash of the file text this revision was based on (``umkm campaign
    sync``); a browser save inherits its predecessor's, so a sync can tell whether the
    file changed since the text the browser started from.

    The number is one more than the campaign's last; the unique (key, number) constraint
    makes a concurrent second save fail instead of sharing a number.
    """
    last = latest(session, campaign_key)
    if last is not None and last.yaml_text == yaml_text:
        return last, False
    number = (session.scalar(select(func.max(CampaignRevision.number))
                             .where(CampaignRevision.campaign_key == campaign_key)) or 0) + 1
    if base_hash is None and last is not None:
        base_hash = last.base_hash
    revision = CampaignRevision(campaign_key=campaign_key, number=number, author=author,
                                yaml_text=yaml_text, review="draft", base_hash=base_hash)
    session.add(revision)
    session.flush()
    return revision, True


def diff(before: str, after: str, number: int) -> str:
    """``revisi N-1`` -> ``revisi N`` as a unified diff of the YAML lines."""
    return "".join(difflib.unified_diff(
        before.splitlines(keepends=True), after.splitlines(keepends=True),
        fromfile=f"revisi {number - 1}", tofile=f"revisi {number}"))


def history(session: Session, campaign_key: str) -> list[RevisionView]:
    """The newest revisions first, each with its diff against the previous one."""
    rows = list(session.scalars(select(CampaignRevision)
                                .where(CampaignRevision.campaign_key == campaign_key)
                                .order_by(CampaignRevision.number.desc())
                                .limit(MAX_LISTED + 1)))
    views = []
    for index, row in enumerate(rows[:MAX_LISTED]):
        previous = rows[index + 1] if index + 1 < len(rows) else None
        views.append(RevisionView(row, diff(previous.yaml_text, row.yaml_text, row.number)
                                  if previous else ""))
    return views
