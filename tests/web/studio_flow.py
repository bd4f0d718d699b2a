"""Shared steps of the four-eyes tests: a small sendable campaign, save, submit, review."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from engine.models import CampaignRevision
from tests.factories import make_customer
from tests.web.test_studio import post_json
from tests.web_helpers import World, csrf

KEY = "uji-empat-mata"
CAMPAIGN = f"""version: 1
id: {KEY}
name: Promo Uji Empat Mata
type: promotional
tags: [semua-produk]
schedule:
  start: 2027-02-01 09:00
  end: 2027-02-28 20:00
  send_window: {{from: "00:00", to: "23:59"}}
audience:
  include: [{{consent: marketing}}]
products: {{opt_in: optional, per_message: 3}}
offer: {{kind: discount, percent: 15, code: TENUN15, ends: 2027-02-28, title: Diskon}}
channels:
  email:
    template: email/promotional.mjml
    subject: "{{{{ customer.first_name }}}}, diskon {{{{ offer.percent }}}}% tenun ikat"
tracking:
  utm: {{source: dinas-tts, medium: "{{{{ channel }}}}", campaign: "{{{{ campaign.id }}}}"}}
"""


def customers(world: World, n: int = 3) -> None:
    with world.session() as session:
        for _ in range(n):
            make_customer(session, marketing=True)
        session.commit()


def save(world: World, text: str = CAMPAIGN, user: str = "staf") -> dict[str, Any]:
    data = post_json(world, "/dinas/kampanye/simpan", {"yaml": text}, user)
    assert data["ok"] is True, data
    return data


def revision_id(world: World, number: int, key: str = KEY) -> int:
    with world.session() as session:
        return int(session.scalars(select(CampaignRevision.id).where(
            CampaignRevision.campaign_key == key, CampaignRevision.number == number)).one())


def form(world: World, user: str, path: str, data: dict[str, str] | None = None) -> Any:
    client = world.client(user)
    return client.post(path, data={"csrf_token": csrf(client, "/dinas"), **(data or {})},
                       follow_redirects=False)


def save_and_submit(world: World, user: str = "staf", text: str = CAMPAIGN) -> int:
    number = int(save(world, text, user)["number"])
    rid = revision_id(world, number)
    assert form(world, user, f"/dinas/kampanye/ajukan/{rid}").status_code == 303
    return rid
