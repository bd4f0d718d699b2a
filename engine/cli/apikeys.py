"""``umkm business apikey ID``: issue (or revoke) the JSON API key of a business.

The key is printed once and never stored in plain text (only its digest), so a lost key
is replaced by issuing a new one, which also invalidates the old.
"""

from __future__ import annotations

import typer
from rich.markup import escape

from engine.cli.app import console, fail
from engine.cli.business import business_app, db_session, default_actor
from engine.common.i18n import t
from engine.umkm import apikeys


@business_app.command("apikey")
def apikey(
    business_id: int = typer.Argument(..., help="ID UMKM."),
    revoke: bool = typer.Option(False, "--revoke", help="Cabut kunci tanpa membuat baru."),
) -> None:
    """Buat kunci API baru untuk UMKM (ditampilkan sekali) atau cabut kuncinya."""
    from engine.models import Business

    with db_session() as session:
        business = session.get(Business, business_id)
        if business is None:
            fail(t("cli.apikey.unknown", id=business_id))
        if revoke:
            had = apikeys.revoke_api_key(session, business_id, actor=default_actor())
            console.print(t("cli.apikey.revoked" if had else "cli.apikey.none", id=business_id))
            return
        token = apikeys.issue_api_key(session, business_id, actor=default_actor())
        console.print(t("cli.apikey.issued", id=business_id, name=escape(business.name)))
        console.print(token, highlight=False, soft_wrap=True)
        console.print(t("cli.apikey.usage"))
