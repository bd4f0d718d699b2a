"""``umkm customers send-confirmation``: the Dinas sends a person the opt-in link.

The only way a person's own withdrawal is lifted is by opening this link and pressing
its button (:mod:`engine.customers.optin`); the command sends it to the address the
customer has on file, within the rate limit of :mod:`engine.delivery.optin_mail`.
"""

from __future__ import annotations

import typer
from rich.markup import escape

from engine.cli.app import console, fail, sub
from engine.cli.business import default_actor, ensure_database
from engine.common.i18n import t
from engine.config import get_settings
from engine.db import session_scope
from engine.delivery import optin_mail

customers_app = sub("customers", "Pelanggan: kirim tautan konfirmasi berlangganan.")


@customers_app.command("send-confirmation")
def send_confirmation_command(
    address: str = typer.Argument(..., help="Email atau nomor WhatsApp pelanggan."),
    channel: str | None = typer.Option(None, "--channel",
                                       help="email atau whatsapp (bawaan: dari alamat)."),
) -> None:
    """Kirim tautan konfirmasi ke alamat pelanggan itu sendiri (dibatasi frekuensinya)."""
    ensure_database()
    settings = get_settings()
    with session_scope(settings) as session:
        found = optin_mail.find_customer(session, address)
        if found is None:
            fail(t("cli.optin_send.unknown", address=escape(address[:254])))
        customer, guessed = found
        chosen = (channel or guessed).strip().lower()
        if chosen not in ("email", "whatsapp"):
            fail(t("cli.optin_send.bad_channel", channel=escape(chosen)))
        sent = optin_mail.send_confirmation(session, settings, customer, chosen,
                                            requested_by=default_actor())
    console.print(t("cli.optin_send.done", channel=sent.channel,
                    address=escape(sent.address)), highlight=False)
