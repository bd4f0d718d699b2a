"""``umkm account connect|list``: social accounts with encrypted, masked tokens."""

from __future__ import annotations

from datetime import UTC, datetime

import typer
from rich.markup import escape
from rich.table import Table

from engine.cli.app import console, fail, sub
from engine.cli.business import db_session
from engine.common.formatting import jam, tanggal_pendek
from engine.common.i18n import t
from engine.social import accounts

account = sub("account", "Akun media sosial Dinas atau UMKM (token terenkripsi).")


@account.command("connect")
def connect_command(
    platform: str = typer.Argument(..., help="facebook | instagram | tiktok | whatsapp"),
    external_id: str = typer.Option(..., "--id", help="ID Page / IG user / open_id / nomor WA."),
    name: str = typer.Option(..., "--name", help="Nama akun untuk ditampilkan."),
    token: str = typer.Option(..., "--token", prompt=True, hide_input=True,
                              help="Token akses (disimpan terenkripsi)."),
    refresh_token: str | None = typer.Option(None, "--refresh-token", help="Token refresh."),
    expires: str | None = typer.Option(None, "--expires", help="Kedaluwarsa token (ISO)."),
    business: int | None = typer.Option(None, "--business", help="ID UMKM pemilik akun."),
) -> None:
    """Sambungkan (atau sambung ulang) akun media sosial."""
    expires_at = None
    if expires:
        try:
            expires_at = datetime.fromisoformat(expires)
        except ValueError:
            fail(t("acct.cli.bad_expiry", value=expires))
        if expires_at.tzinfo is None:
            expires_at = expires_at.replace(tzinfo=UTC)
    with db_session() as session:
        row = accounts.connect(session, platform=platform, external_id=external_id,
                               name=name, access_token=token, refresh_token=refresh_token,
                               expires_at=expires_at, business_id=business)
        console.print(t("acct.cli.connected", key=accounts.key_of(row), name=escape(name)))


@account.command("list")
def list_command() -> None:
    """Daftar akun dengan token tersamar, status dan masa jeda."""
    with db_session() as session:
        views = accounts.overview(session)
    if not views:
        console.print(t("acct.cli.none"))
        return
    table = Table()
    for column in ("akun", "nama", "ID", "token", "status", "kedaluwarsa"):
        table.add_column(column)
    for v in views:
        status = "ok"
        if v.status == accounts.STATUS_NEEDS_RECONNECT:
            status = f"[red]{t('acct.cli.needs_reconnect')}[/]"
        elif v.cooling_until:
            status = f"[yellow]{t('acct.cli.cooling', when=jam(v.cooling_until))}[/]"
        expiry = tanggal_pendek(v.expires_at) if v.expires_at else "-"
        table.add_row(v.key, escape(v.name), v.external_id, v.token, status, expiry)
    console.print(table)
