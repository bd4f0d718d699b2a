"""``umkm campaign ab RUN``: A/B results of a campaign run, per variant (issue 19).

The figures and the test are :mod:`engine.reporting.abtest`; this module only prints
them, with Indonesian number formats (``25,0%``, ``0,012``).
"""

from __future__ import annotations

import typer
from babel.numbers import format_decimal, format_percent
from rich import box
from rich.table import Table

from engine.cli.app import console, fail
from engine.cli.business import db_session
from engine.cli.campaign import campaign
from engine.common.i18n import get_lang, t
from engine.delivery.ab_winner import due_at, winner_of
from engine.models import AbWinner, CampaignRun, aware
from engine.reporting.abtest import VariantRow, variant_results


def _locale() -> str:
    return "id_ID" if get_lang() == "id" else "en_US"


def _percent(value: float) -> str:
    return format_percent(value, "#,##0.0%", locale=_locale())


def _test_cells(row: VariantRow) -> tuple[str, str, str]:
    """z, p and the verdict against the first variant ("–" for the first itself)."""
    test = row.versus_first
    if test is None:
        return "–", "–", "–"
    verdict = t("ab.significant" if test.significant else "ab.not_significant")
    return (format_decimal(round(test.z, 2), locale=_locale()),
            format_decimal(round(test.p_value, 4), locale=_locale()), verdict)


@campaign.command("ab")
def ab_command(run_id: int = typer.Argument(..., help="Nomor putaran kampanye.")) -> None:
    """Hasil A/B per varian: terkirim, dibuka (unik), diklik (unik), lead, uji z."""
    with db_session() as session:
        if session.get(CampaignRun, run_id) is None:
            fail(t("ops.status.unknown", ref=run_id))
        rows = variant_results(session, run_id)
        winner, due = winner_of(session, run_id), due_at(session, run_id)
        if winner is not None:
            session.expunge(winner)
    if not rows:
        console.print(t("ab.none", run=run_id), style="yellow")
        return
    table = Table(title=t("ab.title", run=run_id), title_justify="left", box=box.SIMPLE_HEAD)
    for key in ("variant", "sent", "opens", "clicks", "click_rate", "leads", "z", "p",
                "verdict"):
        table.add_column(t(f"ab.col.{key}"), justify="left" if key == "variant" else "right")
    for row in rows:
        table.add_row(row.variant, format_decimal(row.sent, locale=_locale()),
                      format_decimal(row.unique_opens, locale=_locale()),
                      format_decimal(row.unique_clicks, locale=_locale()),
                      _percent(row.click_rate), format_decimal(row.leads, locale=_locale()),
                      *_test_cells(row))
    console.print(table)
    console.print(t("ab.note", first=rows[0].variant))
    _print_winner(winner, due)


def _print_winner(winner: AbWinner | None, due: object) -> None:
    """The winner rule's decision: which variant, how, when, and how many got it."""
    if winner is None:
        if due is not None:
            console.print(t("ab.winner_pending", when=f"{due:%Y-%m-%d %H:%M} UTC"))
        return
    decided = aware(winner.decided_at)
    console.print(t("ab.winner", variant=winner.variant, metric=t(f"ab.metric.{winner.metric}"),
                    how=t(f"ab.decided.{winner.decided_by}"),
                    when=f"{decided:%Y-%m-%d %H:%M} UTC" if decided else "?",
                    rest=format_decimal(winner.rest_planned, locale=_locale())),
                  style="bold green")
