"""``umkm demo``: one command from an empty checkout to a database worth looking at.

It creates the secret key, migrates, loads the demo dataset (:mod:`engine.demo.seeding`)
and reports what is there: the Pasal 10 verdict of every UMKM, products, customers by
consent state and orders per month. Running it again adds nothing and says so.

The pipeline after seeding (campaign validation, sending, workers, social channels,
web) is a list of :class:`DemoStage` in :data:`NEXT_STAGES`. A stage returns the lines
to print, or raises :class:`StageUnavailable` while its part of the engine is not
wired in yet; later work plugs a stage in by replacing its ``run`` callable, without
touching the rest of this command.
"""

from __future__ import annotations

import importlib.util
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import typer
from babel.dates import format_date
from babel.numbers import format_decimal
from rich.markup import escape
from rich.table import Table
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from engine.cli.app import app, console, fail
from engine.cli.setup import initialise
from engine.common.formatting import WITA, rupiah
from engine.common.i18n import get_lang, t
from engine.config import Settings, get_settings
from engine.db import session_scope
from engine.demo.dataset import DEMO_SOURCE, DemoSummary
from engine.demo.generator import as_utc
from engine.demo.seeding import demo_business_ids, demo_customer_filter, seed_demo
from engine.models import (
    Business,
    Consent,
    ConsentChannel,
    ConsentPurpose,
    Customer,
    Order,
    Product,
    ProductOptIn,
)
from engine.umkm import wilayah
from engine.umkm.businesses import BusinessError
from engine.umkm.eligibility import FAIL, WARNING, check_business

# --------------------------------------------------------------------------- stages


class StageUnavailable(Exception):
    """A pipeline stage that cannot run yet; ``reason`` tells the user why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class StageContext:
    """What a stage may use: the settings and what the seeding produced."""

    settings: Settings
    summary: DemoSummary


# Returns Rich-markup lines (escape any user text with rich.markup.escape).
StageRun = Callable[[StageContext], list[str]]


@dataclass
class DemoStage:
    """One step after seeding: an i18n key for its title and the callable that runs it."""

    title_key: str
    run: StageRun


def _unwired(*modules: str) -> StageRun:
    """A placeholder stage: names the first missing module, else says it is not wired."""

    def run(_ctx: StageContext) -> list[str]:
        for module in modules:
            if not _module_exists(module):
                raise StageUnavailable(t("demo.stage.missing", module=module))
        raise StageUnavailable(t("demo.stage.unwired", module=", ".join(modules)))

    return run


def _module_exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # the parent package itself is missing
        return False


def _campaigns_dir() -> Path:
    """``campaigns/`` of the working directory (a checkout), else next to the code."""
    here = Path("campaigns")  # relative, so errors read campaigns/x.yaml:3:5
    return here if here.is_dir() else Path(__file__).resolve().parents[2] / "campaigns"


def validate_campaigns(_ctx: StageContext) -> list[str]:
    """Validate every example campaign exactly as ``umkm campaign validate`` does."""
    if not _module_exists("engine.campaign.loader"):
        raise StageUnavailable(t("demo.stage.missing", module="engine.campaign.loader"))
    from engine.campaign.loader import check_files

    files = sorted(_campaigns_dir().glob("*.yaml"))
    if not files:
        raise StageUnavailable(t("demo.stage.no_campaigns", path=_campaigns_dir()))
    lines: list[str] = []
    for path, (spec, errors) in check_files(files).items():
        if spec is not None:
            lines.append(f"[green]✓[/] {escape(path.name)}: {spec.type} [dim]{spec.id}[/]")
        lines += [f"[red]✗[/] {escape(str(error))}" for error in errors]
    return lines


def send_campaigns(_ctx: StageContext) -> list[str]:
    """Launch the examples, tick the scheduler once and send through the Celery tasks."""
    from engine.cli import demo_pipeline
    from engine.demo.whatsapp_clicks import simulate_share_kit_clicks

    lines = demo_pipeline.launch_examples(_campaigns_dir())
    lines += demo_pipeline.tick_and_send()
    with session_scope() as session:
        taps = simulate_share_kit_clicks(session)
    return [*lines, t("dp.wa_demo_clicks", n=taps)] if taps else lines


def show_workers(ctx: StageContext) -> list[str]:
    from engine.cli import demo_pipeline

    return demo_pipeline.where_it_went(Path(ctx.settings.var_dir), ctx.settings.smtp_host,
                                       ctx.settings.smtp_port)


def show_social(ctx: StageContext) -> list[str]:
    from engine.cli import demo_pipeline

    return demo_pipeline.social_outputs(Path(ctx.settings.var_dir))


def show_dns(ctx: StageContext) -> list[str]:
    """The DNS records this install would need before it sends for real (issue 21)."""
    from engine.cli.deliverability import record_lines
    from engine.delivery.dns_records import expected_records

    return [*record_lines(expected_records(ctx.settings)), t("demo.dns.doctor")]


def show_web(_ctx: StageContext) -> list[str]:
    from engine.cli import demo_pipeline

    return demo_pipeline.web_hint()


NEXT_STAGES: list[DemoStage] = [
    DemoStage("demo.stage.campaigns", validate_campaigns),
    DemoStage("demo.stage.sending", send_campaigns),
    DemoStage("demo.stage.workers", show_workers),
    DemoStage("demo.stage.social", show_social),
    DemoStage("demo.stage.dns", show_dns),
    DemoStage("demo.stage.web", show_web),
]


# --------------------------------------------------------------------------- command


@app.command("demo", help=t("demo.help", lang="id"))
def demo_command(
    seed: int = typer.Option(17, "--seed", help=t("demo.seed_help", lang="id")),
) -> None:
    """Load the demo once; every run prints the full report of what is there."""
    with console.status(t("demo.status.init")) as status:
        try:
            initialise()
            with session_scope() as session:
                summary = seed_demo(
                    session, seed=seed,
                    on_step=lambda step: status.update(t(f"demo.status.{step}")),
                )
        except BusinessError as exc:
            fail(t("demo.error", reason=str(exc)))
        except SQLAlchemyError as exc:
            cause = getattr(exc, "orig", None) or exc  # the driver's own message
            fail(t("demo.error", reason=str(cause).splitlines()[0]))
    report(summary)
    fail_if_held_back()


def fail_if_held_back() -> None:
    """A write that failed (a full disk) leaves messages pending: say so and exit 1,
    so a script or a person never takes a half-sent demo for a finished one."""
    from engine.cli import demo_pipeline

    count, error = demo_pipeline.held_back()
    if count:
        fail(t("demo.held_back", n=count, error=error or "-"))


def report(summary: DemoSummary) -> None:
    """Print everything the demo put in the database, then the next pipeline stages."""
    console.print()
    if summary.created:
        console.print(t("demo.created", businesses=summary.businesses,
                        eligible=summary.eligible, products=summary.products,
                        customers=summary.customers, orders=_n(summary.orders),
                        items=_n(summary.order_items), opt_ins=summary.opt_ins), style="green")
    else:
        console.print(t("demo.exists"), style="yellow")
    if summary.history_months:
        console.print(t("demo.history", months=summary.history_months), style="dim")
    with session_scope() as session:
        _print_umkm(session)
        console.print(_products_line(session))
        console.print(_consent_table(session, summary.customers))
        console.print(_orders_table(session))
    _print_next_stages(StageContext(get_settings(), summary))
    console.print(t("demo.rerun"), style="dim")


def _n(value: int) -> str:
    return format_decimal(value, locale="id_ID" if get_lang() == "id" else "en_US")


def _print_umkm(session: Session) -> None:
    """One row per UMKM with its Pasal 10 verdict, then the reasons of every ✗ and !.

    The reasons go under the table rather than in a column: they are sentences, and a
    sentence squeezed into a narrow column is unreadable on an 80-column terminal.
    The NIK only ever appears masked.
    """
    table = Table(title=t("demo.umkm.title"))
    table.add_column("#", justify="right", style="dim")
    table.add_column(t("demo.col.umkm"), ratio=3)
    table.add_column(t("demo.col.kecamatan"), ratio=2)
    table.add_column(t("demo.col.nik"), no_wrap=True, min_width=16)
    table.add_column(t("demo.col.products"), justify="right")
    table.add_column(t("demo.col.verdict"), justify="center", no_wrap=True)
    notes: list[str] = []
    businesses = session.scalars(
        select(Business).where(Business.id.in_(demo_business_ids(session)))
        .order_by(Business.id)
    ).all()
    for business in businesses:
        verdict = check_business(business, lang=get_lang())
        mark = "[green]✓[/]" if verdict.eligible else "[red]✗[/]"
        if verdict.eligible and verdict.warnings:
            mark = "[green]✓[/] [yellow]![/]"
        table.add_row(str(business.id), escape(business.name),
                      _kecamatan(business.kecamatan_code), business.owner_nik_masked,
                      str(len(business.products)), mark)
        for c in verdict.criteria:
            if c.status in (FAIL, WARNING):
                sign = "[red]✗[/]" if c.status == FAIL else "[yellow]![/]"
                notes.append(f"{sign} #{business.id} {escape(business.name)}: "
                             f"{escape(c.message)}")
    console.print(table)
    if notes:
        console.print(f"[bold]{t('demo.col.notes')}[/]")
        for note in notes:
            console.print(f"  {note}")


def _kecamatan(code: str) -> str:
    name = wilayah.kecamatan_name(code)
    return name if name else t("demo.outside_tts", code=code)


def _products_line(session: Session) -> str:
    bids = demo_business_ids(session)
    rows = session.execute(
        select(Product.id, Product.in_stock).where(Product.business_id.in_(bids))
    ).all()
    opted = session.execute(
        select(ProductOptIn.product_id).where(
            ProductOptIn.product_id.in_([pid for pid, _ in rows]),
            ProductOptIn.withdrawn_at.is_(None),
        )
    ).scalars().all()
    in_stock = sum(1 for _, stock in rows if stock)
    return t("demo.products", total=len(rows), in_stock=in_stock, out=len(rows) - in_stock,
             opted=len(set(opted)), opt_ins=len(opted))


def consent_states(session: Session) -> dict[ConsentChannel, Counter[str]]:
    """Newest marketing consent per demo customer and channel (the newest row wins)."""
    customers = session.execute(
        select(Customer.id, Customer.email, Customer.phone).where(
            demo_customer_filter())
    ).all()
    latest: dict[tuple[int, ConsentChannel], tuple[datetime, bool]] = {}
    rows = session.execute(
        select(Consent.customer_id, Consent.channel, Consent.granted, Consent.recorded_at)
        .where(Consent.source == DEMO_SOURCE,
               Consent.purpose == ConsentPurpose.marketing)
        .order_by(Consent.recorded_at, Consent.id)
    ).all()
    for customer_id, channel, granted, recorded_at in rows:
        latest[customer_id, channel] = (recorded_at, granted)
    result: dict[ConsentChannel, Counter[str]] = {}
    for channel in (ConsentChannel.email, ConsentChannel.whatsapp):
        counts: Counter[str] = Counter()
        for cid, email, phone in customers:
            address = email if channel is ConsentChannel.email else phone
            state = latest.get((cid, channel))
            if state is not None:
                counts["granted" if state[1] else "withdrawn"] += 1
            elif address:
                counts["never"] += 1
            else:
                counts["no_address"] += 1
        result[channel] = counts
    return result


def _consent_table(session: Session, customers: int) -> Table:
    table = Table(title=t("demo.consent.title", customers=customers))
    table.add_column(t("demo.col.channel"))
    for key in ("granted", "withdrawn", "never", "no_address"):
        table.add_column(t(f"demo.col.{key}"), justify="right")
    for channel, counts in consent_states(session).items():
        table.add_row(channel.value, *(str(counts[k]) for k in
                                       ("granted", "withdrawn", "never", "no_address")))
    return table


def orders_per_month(session: Session) -> list[tuple[date, int, int]]:
    """(first day of month in WITA, orders, value in Rupiah), oldest first."""
    rows = session.execute(
        select(Order.ordered_at, Order.total).where(
            Order.business_id.in_(demo_business_ids(session)))
    ).all()
    count: Counter[date] = Counter()
    value: Counter[date] = Counter()
    for ordered_at, total in rows:
        local = as_utc(ordered_at).astimezone(WITA)
        month = date(local.year, local.month, 1)
        count[month] += 1
        value[month] += int(total)
    return [(m, count[m], value[m]) for m in sorted(count)]


def _orders_table(session: Session) -> Table:
    months = orders_per_month(session)
    peak = max((n for _, n, _ in months), default=1)
    locale = "id_ID" if get_lang() == "id" else "en_US"
    table = Table(title=t("demo.orders.title"))
    table.add_column(t("demo.col.month"))
    table.add_column(t("demo.col.orders"), justify="right")
    table.add_column(t("demo.col.revenue"), justify="right")
    table.add_column("")
    for month, n, total in months:
        bar = "█" * max(1, round(20 * n / peak))
        table.add_row(format_date(month, "MMM y", locale=locale), _n(n), rupiah(total),
                      f"[cyan]{bar}[/]")
    return table


def _print_next_stages(ctx: StageContext) -> None:
    console.print()
    console.rule(f"[bold]{t('demo.next.title')}[/]")
    for stage in NEXT_STAGES:
        title = t(stage.title_key)
        try:
            lines = stage.run(ctx)
        except StageUnavailable as exc:
            console.print(f"[dim]○[/] {title}: [yellow]"
                          f"{t('demo.next.unavailable', reason=exc.reason)}[/]")
            continue
        console.print(f"[green]●[/] {title}")
        for line in lines:
            console.print(f"    {line}")
