"""The A/B winner rule at work: decide the winner when due, then send it to the rest.

A campaign with ``channels.email.winner`` (:mod:`engine.campaign.winner`) first sends its
variants to a test group only (:func:`engine.outbox.materialize.test_group`).
``after_hours`` after the run started, the beat (the ``due_runs`` job) calls
:func:`decide_due_winners`: the variant with the best rate on the rule's metric wins
when the two-proportion z-test against the runner-up is significant (p < 0.05);
otherwise the rule's ``if_not_significant`` picks the best point estimate (``best``,
the default) or variant A (``control``). The decision is one ``ab_winner`` row (unique
per run: a second beat deciding at the same instant inserts nothing and sends nothing),
then the rest of the audience is materialized with the winner's content: consent,
suppressions and the frequency cap are evaluated again, and the unique outbox key
keeps everyone of the test group out of it, so nobody gets two variants.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine.campaign.schema import CampaignSpec
from engine.campaign.winner import WinnerRule
from engine.engagement.abstats import VariantRow, two_proportion_z, variant_results
from engine.models import AbWinner, Campaign, CampaignRun, Delivery, RunStatus, aware
from engine.outbox.materialize import materialize_audience

CONTROL = "A"  # variant A is the ``email`` block itself


def _hits(row: VariantRow, metric: str) -> int:
    return row.unique_clicks if metric == "click_rate" else row.unique_opens


def _rate(row: VariantRow, metric: str) -> float:
    return row.click_rate if metric == "click_rate" else row.open_rate


def choose(rows: list[VariantRow], rule: WinnerRule) -> tuple[str, str, dict[str, Any]]:
    """(winner, how it was decided, the figures) from the test group's results.

    The best rate wins (ties: the earlier variant); "significant" when it beats the
    runner-up in the z-test, else the rule's fallback ("best" or "control"); "no_data"
    when the test group got no mail at all (then the control goes out).
    """
    metric = rule.metric
    figures: dict[str, Any] = {"variants": [
        {"variant": r.variant, "sent": r.sent, "opens": r.unique_opens,
         "clicks": r.unique_clicks, "rate": _rate(r, metric)} for r in rows]}
    if not rows:
        return CONTROL, "no_data", figures
    ranked = sorted(rows, key=lambda r: -_rate(r, metric))  # stable: A before B on a tie
    best = ranked[0]
    test = None
    if len(ranked) > 1:
        runner = ranked[1]
        test = two_proportion_z(_hits(runner, metric), runner.sent, _hits(best, metric),
                                best.sent)
    figures |= {"z": test.z if test else None, "p_value": test.p_value if test else None}
    if test is not None and test.significant and test.z > 0:
        return best.variant, "significant", figures
    if rule.if_not_significant == "control":
        return CONTROL, "control", figures
    return best.variant, "best", figures


def _rule_campaigns(session: Session) -> list[tuple[Campaign, CampaignSpec]]:
    """Campaigns whose stored spec carries a winner rule (few: read in Python)."""
    found = []
    for campaign in session.scalars(select(Campaign).order_by(Campaign.id)):
        email = (campaign.spec.get("channels") or {}).get("email") or {}
        if email.get("winner"):
            found.append((campaign, CampaignSpec.from_storage(campaign.spec)))
    return found


def decide_due_winners(session: Session, now: datetime) -> list[int]:
    """Decide every due, undecided A/B test; return the runs whose rest was planned."""
    decided: list[int] = []
    for campaign, spec in _rule_campaigns(session):
        rule = spec.email.winner if spec.email else None
        if rule is None:
            continue
        cutoff = now - timedelta(hours=rule.after_hours)
        runs = session.scalars(
            select(CampaignRun)
            .outerjoin(AbWinner, AbWinner.run_id == CampaignRun.id)
            .where(CampaignRun.campaign_id == campaign.id, AbWinner.id.is_(None),
                   CampaignRun.started_at.is_not(None), CampaignRun.started_at <= cutoff,
                   CampaignRun.status.in_([RunStatus.running, RunStatus.finished]))
            .order_by(CampaignRun.id)
        ).all()
        for run in runs:
            if decide(session, run, spec, now) is not None:
                decided.append(run.id)
    return decided


def decide(session: Session, run: CampaignRun, spec: CampaignSpec,
           now: datetime) -> AbWinner | None:
    """Decide one run's winner and plan its rest; ``None`` if another beat already did."""
    rule = spec.email.winner if spec.email else None
    if rule is None:
        return None
    variant, how, figures = choose(variant_results(session, run.id), rule)
    winner = AbWinner(run_id=run.id, variant=variant, metric=rule.metric,
                      significant=how == "significant", decided_by=how, figures=figures,
                      decided_at=now)
    try:
        with session.begin_nested():
            session.add(winner)
    except IntegrityError:  # the savepoint is rolled back; the other beat's row stands
        return None
    before = _rows(session, run.id)
    winner.rest_planned = materialize_audience(session, run, spec, now, winner=variant) - before
    if winner.rest_planned and run.status == RunStatus.finished:
        run.status, run.finished_at = RunStatus.running, None  # the rest is still to send
    session.commit()
    return winner


def _rows(session: Session, run_id: int) -> int:
    return int(session.execute(
        select(func.count()).select_from(Delivery).where(Delivery.run_id == run_id)
    ).scalar_one())


def winner_of(session: Session, run_id: int) -> AbWinner | None:
    """The recorded decision of a run, if any (``umkm campaign ab`` shows it)."""
    return session.scalars(select(AbWinner).where(AbWinner.run_id == run_id)).one_or_none()


def due_at(session: Session, run_id: int) -> datetime | None:
    """When a run's A/B test will be decided (``None``: no winner rule or not started)."""
    run = session.get(CampaignRun, run_id)
    campaign = session.get(Campaign, run.campaign_id) if run else None
    if run is None or campaign is None or run.started_at is None:
        return None
    spec = CampaignSpec.from_storage(campaign.spec)
    rule = spec.email.winner if spec.email else None
    started = aware(run.started_at)
    return started + timedelta(hours=rule.after_hours) if rule and started else None
