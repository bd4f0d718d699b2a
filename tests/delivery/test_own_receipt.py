"""Issue 19: order mail of a business that is not eligible (docs/eligibility.md).

The buyer still gets the receipt, but as the business's own mail: From the business's
name, no Dinas header, footer, phone or Perbup line, no other UMKM's products, and the
row carries no UMKM, so ``report --by kecamatan`` / ``--by business`` never show it.
An eligible business's receipt keeps the Dinas branding (the control case).
"""

from __future__ import annotations

import email
from datetime import timedelta
from email import policy
from email.message import EmailMessage
from email.utils import parseaddr
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.campaign.loader import load_campaign
from engine.config import Settings
from engine.delivery import beat, scheduler
from engine.delivery.pipeline import process_batch
from engine.message.templating import DINAS
from engine.models import Delivery, OrderEvent, OrderStatus
from engine.reporting.build import build_report, programme_indicators
from tests.factories import NOW, make_business, make_customer, make_order, make_product
from tests.smtp_server import ScriptedSMTPServer

REPO = Path(__file__).resolve().parents[2]
CONFIRMED = REPO / "campaigns" / "transactional-order-confirmed.yaml"
KUPANG = "53.71.01"  # Kota Kupang: outside TTS, so not eligible (Pasal 10 ayat 1 huruf d)




def _parts(raw: bytes) -> tuple[EmailMessage, str, str]:
    message = email.message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    text, html = message.get_body(("plain",)), message.get_body(("html",))
    assert text is not None and html is not None
    return message, str(text.get_content()), str(html.get_content())


def test_receipt_of_a_business_outside_the_programme_is_its_own_and_uncounted(
        smtp_wired: tuple[Settings, Session], smtp_server: ScriptedSMTPServer) -> None:
    settings, db = smtp_wired
    kupang = make_business(db, name="Kopi Kupang Jaya", kecamatan_code=KUPANG, eligible=False)
    soe = make_business(db, name="Tenun Ikat Nunkolo")
    kopi = make_product(db, kupang, name="Kopi Bubuk", price=40_000)
    kain = make_product(db, soe, name="Kain Tenun Buna", price=150_000)
    outside = make_customer(db, name="Maria Benu")
    inside = make_customer(db, name="Yohanes Tefa")
    orders = {outside.email: make_order(db, outside, [kopi], at=NOW - timedelta(minutes=5)),
              inside.email: make_order(db, inside, [kain], at=NOW - timedelta(minutes=5))}
    for order in orders.values():
        db.add(OrderEvent(order_id=order.id, kind=OrderStatus.confirmed, occurred_at=NOW,
                          source="api"))
    db.commit()
    spec = load_campaign(CONFIRMED)
    scheduler.launch(db, spec, str(CONFIRMED), now=NOW)
    at = NOW + timedelta(minutes=1)
    for batch in beat.batches_of(beat.run_all(settings, at)):
        process_batch(batch.run_id, batch.delivery_ids, settings, at)

    received = {m.rcpt_tos[0]: m for m in smtp_server.messages}
    assert set(received) == {outside.email, inside.email}
    message, text, html = _parts(received[outside.email or ""].data)
    assert parseaddr(str(message["From"]))[0] == "Kopi Kupang Jaya"
    assert "Kopi Bubuk" in text and orders[outside.email].external_ref in text
    for dinas in (DINAS["name"], DINAS["short_name"], DINAS["phone"], "Peraturan Bupati",
                  "Dinas"):
        assert dinas not in text and dinas not in html, dinas
    assert "Kain Tenun Buna" not in text + html  # no other UMKM promoted

    control, control_text, control_html = _parts(received[inside.email or ""].data)
    assert parseaddr(str(control["From"]))[0] != "Tenun Ikat Nunkolo"
    assert DINAS["name"] in control_text and DINAS["short_name"] in control_html
    assert DINAS["phone"] in control_text

    rows = {d.recipient: d for d in db.scalars(select(Delivery))}
    assert rows[outside.email or ""].business_id is None
    assert rows[outside.email or ""].context.get("own_receipt") is True
    assert rows[inside.email or ""].business_id == soe.id
    by_kecamatan = build_report(db, "2026-12", "kecamatan")
    assert KUPANG not in {r.key for r in by_kecamatan.rows}
    assert "53.02.01" in {r.key for r in by_kecamatan.rows}
    by_business = build_report(db, "2026-12", "business")
    assert kupang.id not in {r.key for r in by_business.rows}
    indicators = programme_indicators(db, "2026-12")
    assert indicators.by_kecamatan[KUPANG]["businesses_active"] == 0
    assert indicators.by_kecamatan["53.02.01"]["businesses_active"] == 1
