"""``umkm campaign sync campaigns/ [--export]``: files in git <-> studio revisions.

The rules are :mod:`engine.campaign.sync`'s; this prints one line per file and exits
with 1 on a conflict (nothing written) or an invalid file.
"""

from __future__ import annotations

from pathlib import Path

import typer

from engine.campaign import sync
from engine.cli.app import console, fail
from engine.cli.business import db_session
from engine.cli.campaign import campaign
from engine.common.i18n import t


@campaign.command("sync")
def sync_command(
    folder: Path = typer.Argument(..., help="Folder berkas kampanye (mis. campaigns/)."),
    export: bool = typer.Option(False, "--export",
                                help="Tulis revisi terbaru dari studio ke berkas."),
) -> None:
    """Impor berkas YAML sebagai revisi studio (atau --export: revisi ke berkas)."""
    if not folder.is_dir():
        fail(t("campaign.cli.not_found") + f": {folder}")
    with db_session() as session:
        items = sync.plan(session, folder, export=export)
        ok = sync.apply(session, items)
    for item in items:
        style = "bold red" if item.outcome in (sync.CONFLICT, sync.INVALID) else None
        console.print(item.message, style=style, markup=False, highlight=False,
                      soft_wrap=True)
    bad = [i for i in items if i.outcome in (sync.CONFLICT, sync.INVALID)]
    if not ok:
        console.print(t("studio.sync.nothing_written"), style="bold red", highlight=False)
    if bad:
        raise typer.Exit(1)
