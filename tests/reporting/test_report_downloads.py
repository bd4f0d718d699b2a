"""Pasal 15 reports from the web: staff download the whole programme, an owner only
their own business (issue 7: "the same reports in the Dinas dashboard, and for an owner,
restricted to their own business")."""

from __future__ import annotations

from engine.models import DeliveryProduct
from tests.factories import NOW, make_campaign, make_customer, make_delivery, make_event, make_run
from tests.web_helpers import World

PERIOD = "2026-12"


def _history(world: World) -> None:
    """One campaign that mailed product A to one customer and product B to another."""
    with world.session() as s:
        campaign = make_campaign(s, key="promo-uji", name="Promo Uji")
        run = make_run(s, campaign, status="finished")
        for product, business in (("product_a", "business_a"), ("product_b", "business_b")):
            customer = make_customer(s)
            delivery = make_delivery(s, run, customer, business_id=world.ids[business])
            s.add(DeliveryProduct(delivery_id=delivery.id, product_id=world.ids[product],
                                  business_id=world.ids[business]))
            make_event(s, customer, type="open", delivery_id=delivery.id, run_id=run.id,
                       business_id=world.ids[business], product_id=world.ids[product], at=NOW)
        s.commit()


def test_staff_download_html_report_with_charts_and_csv(world: World) -> None:
    _history(world)
    client = world.client("staf")
    html = client.get(f"/dinas/laporan/unduh?periode={PERIOD}&by=business&format=html")
    assert html.status_code == 200
    assert "attachment" in html.headers["content-disposition"]
    assert "<svg" in html.text and "Tenun Ina A" in html.text and "Madu Hutan B" in html.text
    csv = client.get(f"/dinas/laporan/unduh?periode={PERIOD}&by=business&format=csv")
    assert csv.status_code == 200 and csv.content.startswith(b"\xef\xbb\xbf")  # UTF-8 BOM
    assert client.get("/dinas/laporan/unduh?periode=bulan-lalu").status_code == 400


def test_owner_report_shows_only_their_business(world: World) -> None:
    _history(world)
    report = world.client("pemilik-a").get(f"/portal/laporan?periode={PERIOD}&format=csv")
    assert report.status_code == 200
    text = report.content.decode("utf-8-sig")
    assert "promo-uji" in text or "Promo Uji" in text
    other = world.client("pemilik-b").get(f"/portal/laporan?periode={PERIOD}&format=csv")
    # each owner sees one sent message (their own), never the programme total of two
    assert _sent_total(text) == 1 and _sent_total(other.content.decode("utf-8-sig")) == 1


def test_owners_cannot_download_the_programme_report(world: World) -> None:
    response = world.client("pemilik-a").get(f"/dinas/laporan/unduh?periode={PERIOD}",
                                             follow_redirects=False)
    assert response.status_code in (302, 303, 403, 404)
    assert "Madu Hutan B" not in response.text


def _sent_total(csv_text: str) -> int:
    import csv
    import io

    rows = list(csv.reader(io.StringIO(csv_text), delimiter=_delimiter(csv_text)))
    header = rows[0]
    column = next(i for i, name in enumerate(header) if name.lower().startswith(("terkirim",
                                                                                  "sent")))
    return sum(int(r[column] or 0) for r in rows[1:] if r and r[0] and not
               r[0].lower().startswith(("total", "jumlah")))


def _delimiter(text: str) -> str:
    first = text.splitlines()[0]
    return ";" if first.count(";") > first.count(",") else ","
