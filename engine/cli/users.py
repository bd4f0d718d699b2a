"""``umkm user add|list|passwd|disable``: accounts for the portal and the Dinas dashboard.

The password is asked twice without echo (or read from stdin with ``--password-stdin``
for provisioning scripts); it never appears on the command line, where ``ps`` and shell
history would keep it.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.markup import escape
from rich.table import Table
from sqlalchemy.orm import Session

from engine.cli.app import console, fail, sub
from engine.cli.business import default_actor, ensure_database
from engine.common.crypto import MissingSecretKey
from engine.common.i18n import t
from engine.db import session_scope
from engine.umkm import users

user_app = sub("user", "Kelola akun portal UMKM dan dasbor Dinas.")


@contextmanager
def _session() -> Iterator[Session]:
    """A migrated session. Refusals (:class:`users.UserError`) reach the CLI's one handler;
    a missing secret key is no engine error, so it is printed here."""
    try:
        ensure_database()
        with session_scope() as session:
            yield session
    except MissingSecretKey as exc:
        fail(escape(str(exc)))


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            fail(t("cli.user.password_empty"))
        return password
    value: str = typer.prompt(t("cli.user.password_prompt"), hide_input=True,
                              confirmation_prompt=t("cli.user.password_repeat"))
    return value


@user_app.command("add")
def add_command(
    username: str = typer.Argument(..., help="Nama pengguna (huruf kecil)."),
    role: str = typer.Option(..., "--role",
                             help="dinas_admin, dinas_staff, umkm_owner atau pendamping."),
    business: int | None = typer.Option(None, "--business", help="ID UMKM milik akun pemilik."),
    password_stdin: bool = typer.Option(False, "--password-stdin",
                                        help="Baca kata sandi dari stdin (untuk skrip)."),
) -> None:
    """Buat akun baru; kata sandi ditanyakan tanpa ditampilkan."""
    # Validate what we can before asking for a password nobody will use.
    users.parse_role(role)
    password = _read_password(password_stdin)
    with _session() as session:
        user = users.create_user(session, username, password, role, business,
                                 actor=default_actor())
        key = "cli.user.created_business" if user.business_id else "cli.user.created"
        console.print(t(key, username=user.username, role=user.role.value,
                        business=user.business_id), highlight=False)


@user_app.command("list")
def list_command() -> None:
    """Daftar akun (tanpa kata sandi)."""
    with _session() as session:
        rows = users.list_users(session)
        if not rows:
            console.print(t("cli.user.none"))
            return
        table = Table()
        for key in ("username", "role", "business", "active"):
            table.add_column(t(f"cli.user.col.{key}"))
        for user in rows:
            table.add_row(escape(user.username), user.role.value,
                          str(user.business_id or "-"),
                          t("cli.user.yes" if user.active else "cli.user.no"))
        console.print(table)


@user_app.command("passwd")
def passwd_command(
    username: str = typer.Argument(...),
    password_stdin: bool = typer.Option(False, "--password-stdin"),
) -> None:
    """Ganti kata sandi sebuah akun (semua sesi lamanya berakhir)."""
    with _session() as session:
        user = users.get_user(session, username)
    password = _read_password(password_stdin)
    with _session() as session:
        user = users.get_user(session, username)
        users.set_password(session, user, password, actor=default_actor())
        console.print(t("cli.user.password_set", username=user.username), highlight=False)


@user_app.command("disable")
def disable_command(
    username: str = typer.Argument(...),
    enable: bool = typer.Option(False, "--enable", help="Aktifkan kembali."),
) -> None:
    """Nonaktifkan (atau aktifkan kembali) sebuah akun tanpa menghapus jejak auditnya."""
    with _session() as session:
        user = users.get_user(session, username)
        users.set_active(session, user, enable, actor=default_actor())
        key = "cli.user.enabled" if enable else "cli.user.disabled"
        console.print(t(key, username=user.username), highlight=False)


@user_app.command("contact")
def contact_command(
    username: str = typer.Argument(...),
    email: str = typer.Option(None, "--email", help="Email staf sendiri (uji kirim studio)."),
    whatsapp: str = typer.Option(None, "--whatsapp", help="Nomor WhatsApp staf sendiri."),
) -> None:
    """Catat alamat email/WhatsApp staf sendiri: satu-satunya tujuan uji kirim studio."""
    from engine.delivery.trial_send import set_contact

    with _session() as session:
        user = users.get_user(session, username)
        row = set_contact(session, user, email=email, whatsapp=whatsapp,
                          actor=default_actor())
        console.print(t("studio.cli.contact_set", username=user.username,
                        email=row.email or "-", whatsapp=row.whatsapp or "-"),
                      highlight=False)
