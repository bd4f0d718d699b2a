"""``umkm account connect|list``: social accounts with encrypted, masked tokens.

Tokens are never command-line arguments (issue 17): an argument stays in the shell
history and is visible to every user in the process list. ``connect`` asks for the
token at a hidden prompt, or reads it from ``--token-file PATH`` (``-`` = standard
input, for ``pass show ... | umkm account connect ... --token-file -``). The dashboard
connects accounts through the platforms' own consent screens
(``/dinas/akun-sosial/hubungkan``).
"""

from __future__ import annotations

import stat
import sys
from datetime import UTC, datetime
from pathlib import Path

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
    token_file: str | None = typer.Option(
        None, "--token-file", help="Berkas berisi token akses ('-' = stdin); tanpa ini "
        "token ditanyakan tanpa ditampilkan."),
    refresh_token_file: str | None = typer.Option(
        None, "--refresh-token-file", help="Berkas berisi token refresh ('-' = stdin)."),
    expires: str | None = typer.Option(None, "--expires", help="Kedaluwarsa token (ISO)."),
    business: int | None = typer.Option(None, "--business", help="ID UMKM pemilik akun."),
) -> None:
    """Sambungkan (atau sambung ulang) akun media sosial."""
    token = read_token(token_file) if token_file else str(
        typer.prompt(t("acct.cli.token_prompt"), hide_input=True))
    refresh_token = read_token(refresh_token_file) if refresh_token_file else None
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


def read_token(path: str) -> str:
    """The token in a file (or stdin for ``-``), whitespace stripped; an empty or
    unreadable file is a clear error, a file other users can read gets a warning."""
    if path == "-":
        text = sys.stdin.read()
    else:
        file = Path(path)
        try:
            text = file.read_text(encoding="utf-8")
            mode = file.stat().st_mode
        except (OSError, UnicodeDecodeError) as exc:
            fail(t("acct.cli.token_file_unreadable", path=escape(path),
                   reason=escape(type(exc).__name__)))
        if mode & (stat.S_IRGRP | stat.S_IROTH):
            console.print(f"[yellow]{t('acct.cli.token_file_open', path=escape(path))}[/]")
    token = text.strip()
    if not token:
        fail(t("acct.cli.token_file_empty", path=escape(path)))
    return token


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
