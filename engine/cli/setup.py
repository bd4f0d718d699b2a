"""``umkm init``: create the secret key and the database schema (idempotent)."""

from __future__ import annotations

from engine.cli.app import app, console
from engine.common.i18n import t
from engine.config import ensure_secret_key, get_settings, reset_settings
from engine.db import migrate


def initialise() -> None:
    """Make sure a secret key exists and the schema is at the newest revision."""
    settings, created = ensure_secret_key(get_settings())
    reset_settings()
    if created:
        console.print(t("init.key_created", path=settings.secret_key_file))
    else:
        console.print(t("init.key_exists"))
    migrate()
    console.print(t("init.migrated", url=_safe_url(get_settings().effective_database_url)))


def _safe_url(url: str) -> str:
    """Hide a password in a database URL before printing it."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


@app.command("init")
def init_command() -> None:
    """Siapkan kunci rahasia dan skema basis data (aman dijalankan berulang)."""
    initialise()
