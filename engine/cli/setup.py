"""``umkm init``: create the secret key, a DKIM key and the database schema (idempotent).

The DKIM key is generated only when none is configured (DKIM_KEY_PATH empty): a fresh
install then signs its mail at once, and prints the TXT record to publish for it.
"""

from __future__ import annotations

from engine.cli.app import app, console
from engine.common.i18n import t
from engine.config import Settings, ensure_secret_key, get_settings, reset_settings
from engine.db import migrate
from engine.delivery.dns_records import DKIM, expected_records
from engine.message.dkim import generate_key_file


def initialise() -> None:
    """Make sure a secret key exists and the schema is at the newest revision."""
    settings, created = ensure_secret_key(get_settings())
    reset_settings()
    if created:
        console.print(t("init.key_created", path=settings.secret_key_file))
    else:
        console.print(t("init.key_exists"))
    ensure_dkim_key(get_settings())
    migrate()
    console.print(t("init.migrated", url=_safe_url(get_settings().effective_database_url)))


def ensure_dkim_key(settings: Settings) -> None:
    """Generate ``var/dkim/<selector>.pem`` (RSA 2048, 0600) when no key is configured."""
    if settings.dkim_key_path:
        if settings.dkim_key_path == str(settings.generated_dkim_key_file):
            console.print(t("init.dkim_exists", path=settings.dkim_key_path))
        return
    path = settings.generated_dkim_key_file
    generate_key_file(path)
    reset_settings()
    console.print(t("init.dkim_created", path=path))
    for record in expected_records(get_settings()):
        if record.kind == DKIM and record.value:
            console.print(record.zone_line(), soft_wrap=True, highlight=False, markup=False)


def _safe_url(url: str) -> str:
    """Hide a password in a database URL before printing it."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


@app.command("init")
def init_command() -> None:
    """Siapkan kunci rahasia dan skema basis data (aman dijalankan berulang)."""
    initialise()
