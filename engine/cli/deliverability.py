"""``umkm dns [--check]`` and ``umkm doctor``: what to publish in DNS and whether mail will land.

Both print in the current language (Indonesian by default) and exit 1 when something
fails, so a deploy script can stop on them (docs/deliverability.md).
"""

from __future__ import annotations

import typer
from rich.markup import escape

from engine.cli.app import app, console
from engine.cli.business import db_session
from engine.common.i18n import t
from engine.config import get_settings
from engine.delivery import dns_check, doctor
from engine.delivery.dns_records import DnsRecord, expected_records

_STATE_MARK = {dns_check.OK: "[green]✓[/]", dns_check.WARN: "[yellow]![/]",
               dns_check.MISSING: "[red]✗[/]", dns_check.WRONG: "[red]✗[/]"}
_LEVEL_MARK = {doctor.PASS: "[green]✓[/]", doctor.WARN: "[yellow]![/]",
               doctor.FAIL: "[red]✗[/]"}


def record_lines(records: list[DnsRecord]) -> list[str]:
    """The records as zone-file lines (Rich markup escaped), hints for the unknown ones."""
    lines: list[str] = []
    for record in records:
        lines.append(f"[bold]{t(f'dns.kind.{record.kind}')}[/]")
        if record.value:
            lines.append(f"  {escape(record.zone_line())}")
        else:
            lines.append(f"  [yellow]{escape(t(record.hint_key, name=record.name))}[/]")
    return lines


@app.command("dns")
def dns_command(
    check: bool = typer.Option(False, "--check",
                               help="Tanyakan DNS dan katakan mana yang hilang atau salah."),
) -> None:
    """Catatan DNS (SPF, DKIM, DMARC, MX bounce) yang harus dipasang untuk domain pengirim."""
    settings = get_settings()
    console.print(t("dns.title", domain=settings.from_domain))
    for line in record_lines(expected_records(settings)):
        console.print(line, soft_wrap=True, highlight=False)
    if not check:
        return
    console.print()
    console.print(f"[bold]{t('dns.check.title')}[/]")
    results = dns_check.check_records(settings)
    for result in results:
        state = t(f"dns.state.{result.state}")
        console.print(f"{_STATE_MARK[result.state]} {state}: {escape(result.message)}",
                      soft_wrap=True, highlight=False)
    if any(result.failed for result in results):
        raise typer.Exit(1)


@app.command("doctor")
def doctor_command() -> None:
    """Daftar periksa keterkiriman email (syarat pengirim massal Gmail, Yahoo, Microsoft)."""
    settings = get_settings()
    with db_session() as session:
        report = doctor.run_doctor(session, settings)
    console.print(f"[bold]{t('doctor.title', domain=settings.from_domain)}[/]")
    for item in report.items:
        console.print(f"{_LEVEL_MARK[item.level]} [bold]{escape(item.title)}[/] "
                      f"({t(f'doctor.level.{item.level}')}): {escape(item.message)}",
                      soft_wrap=True, highlight=False)
    if report.failures:
        console.print(f"[red]{t('doctor.summary_fail', n=len(report.failures))}[/]")
        raise typer.Exit(1)
    console.print(f"[green]{t('doctor.summary_ok')}[/]")
