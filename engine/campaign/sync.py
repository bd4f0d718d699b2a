"""``umkm campaign sync campaigns/``: the campaign files in git and the studio's
revisions, kept as one history (issue 18).

Why a hash on each revision (``base_hash``): a revision records the file text it was
based on. An imported or exported revision *is* that text; a browser save inherits its
predecessor's hash. The newest revision whose text is its own base is the last synced
one; from it the sync tells

- the file changed since the last sync (its hash differs from that base), and
- the browser has a newer revision than the last synced one.

Both at once is a conflict: nothing is written for any campaign (no import, no file),
so neither text is lost; the conflict goes to ``audit_log`` and the studio's revision
page shows it until a later sync of that campaign succeeds.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.campaign.loader import check_text
from engine.campaign.revisions import latest, save
from engine.common.i18n import t
from engine.models import AuditLog, CampaignRevision

CONFLICT, IMPORTED, EXPORTED, SAME, INVALID = (
    "conflict", "imported", "exported", "unchanged", "invalid")
BROWSER_NEWER, FILE_NEWER = "browser_newer", "file_newer"
SYNC_ACTION, CONFLICT_ACTION = "campaign.sync", "campaign.sync_conflict"


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass
class SyncItem:
    """What the sync does (or refuses) for one campaign file."""

    file: Path
    campaign: str
    outcome: str
    text: str = ""
    number: int = 0  # the revision imported, exported or the browser's newest
    synced: int = 0  # the last synced revision

    @property
    def message(self) -> str:
        return t(f"studio.sync.{self.outcome}", file=self.file.name, id=self.campaign,
                 number=self.number, synced=self.synced)


def last_synced(session: Session, campaign_key: str) -> CampaignRevision | None:
    """The newest revision that is exactly the file text it was based on."""
    rows = session.scalars(select(CampaignRevision)
                           .where(CampaignRevision.campaign_key == campaign_key,
                                  CampaignRevision.base_hash.is_not(None))
                           .order_by(CampaignRevision.number.desc()))
    return next((r for r in rows if r.base_hash == text_hash(r.yaml_text)), None)


def _files(folder: Path) -> list[Path]:
    return sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")])


def _key_of(text: str, file: Path) -> str | None:
    spec, _errors = check_text(text, file.name)
    return spec.id if spec is not None else None


def _judge(session: Session, file: Path, key: str, text: str | None,
           export: bool) -> SyncItem:
    """The outcome for one campaign: ``text`` is the file's (``None``: no file yet)."""
    newest = latest(session, key)
    synced = last_synced(session, key)
    item = SyncItem(file, key, SAME, text or "", newest.number if newest else 0,
                    synced.number if synced else 0)
    if newest is None:
        item.outcome = SAME if export or text is None else IMPORTED
        return item
    if text is not None and newest.yaml_text == text:
        return item
    file_changed = text is not None and (synced is None or synced.base_hash != text_hash(text))
    browser_newer = synced is None or newest.number > synced.number
    if file_changed and browser_newer:
        item.outcome = CONFLICT
    elif file_changed:
        item.outcome = FILE_NEWER if export else IMPORTED
    elif browser_newer:
        item.outcome = EXPORTED if export else BROWSER_NEWER
    return item


def plan(session: Session, folder: Path, *, export: bool = False) -> list[SyncItem]:
    """What a sync of ``folder`` would do, file by file (nothing is written)."""
    items: list[SyncItem] = []
    seen: set[str] = set()
    for file in _files(folder):
        text = file.read_text(encoding="utf-8")
        key = _key_of(text, file)
        if key is None:
            items.append(SyncItem(file, "-", INVALID))
            continue
        seen.add(key)
        items.append(_judge(session, file, key, text, export))
    if export:
        keys = session.scalars(select(CampaignRevision.campaign_key).distinct())
        for key in sorted(set(keys) - seen):
            items.append(_judge(session, folder / f"{key}.yaml", key, None, export))
    return items


def apply(session: Session, items: list[SyncItem], actor: str = "cli") -> bool:
    """Carry out a plan; with any conflict nothing is written (``False``)."""
    conflicts = [i for i in items if i.outcome == CONFLICT]
    for item in conflicts:
        session.add(AuditLog(actor=actor, action=CONFLICT_ACTION, entity="campaign",
                             entity_id=item.campaign,
                             detail={"campaign": item.campaign, "file": item.file.name,
                                     "number": item.number, "synced": item.synced}))
    if conflicts:
        session.commit()
        return False
    for item in items:
        if item.outcome == IMPORTED:
            revision, _new = save(session, item.campaign, item.text,
                                  f"git:{item.file.name}"[:120], text_hash(item.text))
            item.number = revision.number
        elif item.outcome == EXPORTED:
            newest = latest(session, item.campaign)
            assert newest is not None  # an export item names a campaign with revisions
            item.file.write_text(newest.yaml_text, encoding="utf-8")
            newest.base_hash = text_hash(newest.yaml_text)
        else:
            if not _mark_same(session, item):
                continue
        session.add(AuditLog(actor=actor, action=SYNC_ACTION, entity="campaign",
                             entity_id=item.campaign,
                             detail={"campaign": item.campaign, "file": item.file.name,
                                     "outcome": item.outcome, "number": item.number}))
    session.commit()
    return True


def _mark_same(session: Session, item: SyncItem) -> bool:
    """A file equal to the newest revision: that revision is now the synced one
    (``True`` when it was not yet: a conflict resolved by hand ends here)."""
    revision = latest(session, item.campaign) if item.outcome == SAME and item.text else None
    if revision is None or revision.yaml_text != item.text \
            or revision.base_hash == text_hash(item.text):
        return False
    revision.base_hash = text_hash(item.text)
    item.number = revision.number
    return True


def open_conflict(session: Session, campaign_key: str) -> AuditLog | None:
    """The last conflict of a campaign, unless a later sync of it went through."""
    row = session.scalars(select(AuditLog)
                          .where(AuditLog.action.in_([SYNC_ACTION, CONFLICT_ACTION]),
                                 AuditLog.entity == "campaign",
                                 AuditLog.entity_id == campaign_key)
                          .order_by(AuditLog.id.desc()).limit(1)).first()
    return row if row is not None and row.action == CONFLICT_ACTION else None


def conflict_message(row: AuditLog) -> str:
    """The conflict in the reader's words (the studio's revision page)."""
    detail = row.detail or {}
    return t("studio.sync.conflict", file=str(detail.get("file", "-")), id=row.entity_id or "-",
             number=detail.get("number", 0), synced=detail.get("synced", 0))
