"""When a campaign may send: its send window, its first send time, its cron occurrences.

Every time rule of a campaign is read in the campaign's own zone (``timezone``, WITA by
default), never in the server's: a Dinas in Kupang means 08:00 WITA whatever machine
runs the beat. The schema (:class:`CampaignSpec`) already knows its zone, its start and
end in UTC and whether a moment is inside ``send_window``; these functions add the
rules that combine them (transactional mail ignores quiet hours, a closed window opens
again at its next ``from``) so the scheduler, the dispatcher and the demo agree.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from croniter import croniter

from engine.campaign.schema import CampaignSpec
from engine.common.formatting import WITA

# The daily retention scan starts at this hour (WITA); its run key makes it once a day.
RETENTION_HOUR = 8


def in_send_window(spec: CampaignSpec, at: datetime) -> bool:
    """Quiet hours hold bulk mail only: an order confirmation goes out at any hour."""
    return spec.is_transactional or spec.in_send_window(at)


def next_window_open(spec: CampaignSpec, at: datetime) -> datetime:
    """The first instant at or after ``at`` inside the send window (UTC).

    Deferred rows wait in the database until then, never in a broker ETA.
    """
    if in_send_window(spec, at):
        return at
    window = spec.schedule.send_window
    assert window is not None  # only a window can be closed
    local = at.astimezone(spec.zone)
    candidate = datetime.combine(local.date(), time.fromisoformat(window.from_),
                                 tzinfo=spec.zone)
    if candidate <= local:
        candidate += timedelta(days=1)
    return candidate.astimezone(UTC)


def first_send_time(spec: CampaignSpec, now: datetime) -> datetime:
    """A one-off run starts at ``schedule.start`` (or now), moved into the window."""
    start = spec.start_utc() or now
    return next_window_open(spec, max(start, now))


def latest_cron_occurrence(spec: CampaignSpec, now: datetime) -> datetime | None:
    """The newest occurrence of ``schedule.cron`` at or before ``now`` (UTC), if any cron.

    The beat creates the run of the occurrence that has just passed, so a tick that
    comes a little late still sends today's newsletter.
    """
    cron = spec.schedule.cron
    if cron is None:
        return None
    previous: datetime = croniter(cron, now.astimezone(spec.zone)).get_prev(datetime)
    return previous.astimezone(UTC)


def next_cron_occurrence(spec: CampaignSpec, after: datetime) -> datetime | None:
    """The first occurrence of ``schedule.cron`` strictly after ``after`` (UTC), read in
    the campaign's zone (``0 9 1 * *`` is the 1st at 09:00 WITA), if any cron."""
    cron = spec.schedule.cron
    if cron is None:
        return None
    following: datetime = croniter(cron, after.astimezone(spec.zone)).get_next(datetime)
    return following.astimezone(UTC)


def local_day(spec: CampaignSpec, at: datetime) -> date:
    """The calendar day of ``at`` in the campaign's zone (daily run keys use it)."""
    return at.astimezone(spec.zone).date()


def retention_due(now: datetime) -> bool:
    """The retention scan runs from 08:00 WITA, when staff can answer replies."""
    return now.astimezone(WITA).hour >= RETENTION_HOUR
