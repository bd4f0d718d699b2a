"""The owner sees each product's campaigns by name and WITA dates, never by key."""

from __future__ import annotations

import html

from engine.models import ProductOptIn
from tests.factories import make_campaign
from tests.web_helpers import World


def test_owner_sees_campaigns_of_each_product_by_name_and_dates(world: World) -> None:
    with world.session() as session:
        make_campaign(session, key="promo-desember-2026", name="Promo Natal",
                      spec={"schedule": {"start": "2026-12-01T08:00:00+08:00",
                                         "end": "2026-12-31T20:00:00+08:00"}})
        make_campaign(session, key="tenun-ikat", name="Pekan Tenun", tags=["tenun"],
                      spec={"schedule": {"start": "2026-11-30T23:30:00+00:00"}})
        make_campaign(session, key="tidak-diikuti", name="Kampanye Lain")
        pid = world.ids["product_a"]
        session.add_all([
            ProductOptIn(product_id=pid, campaign_key="promo-desember-2026", opted_by="t"),
            ProductOptIn(product_id=pid, campaign_key="tenun", is_tag=True, opted_by="t")])
        session.commit()
    client = world.client("pemilik-a")
    home = html.unescape(client.get("/portal").text)
    assert "Promo Natal · Selasa, 1 Desember 2026 – Kamis, 31 Desember 2026" in home
    # 23.30 UTC on 30 November is already 1 December in WITA.
    assert "Pekan Tenun · Selasa, 1 Desember 2026" in home
    assert "Kampanye Lain" not in home
    for key in ("promo-desember-2026", "tenun-ikat", "tidak-diikuti"):
        assert key not in home
    product = html.unescape(client.get(f"/portal/produk/{pid}").text)
    assert "Promo Natal · Selasa, 1 Desember 2026 – Kamis, 31 Desember 2026" in product
    assert "Pekan Tenun · Selasa, 1 Desember 2026" in product
