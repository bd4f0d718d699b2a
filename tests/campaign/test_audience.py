"""Audience segments compiled to SQL, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.campaign.audience import (
    AudienceCount,
    AudienceRuleError,
    build_audience_query,
    count_audience,
    iter_audience_ids,
)
from engine.models import Customer
from tests.factories import (
    NOW,
    make_business,
    make_campaign,
    make_consent,
    make_customer,
    make_delivery,
    make_event,
    make_order,
    make_product,
    make_run,
    make_suppression,
)

DAY = timedelta(days=1)


def ids(db: Session, audience: dict[str, Any], *, campaign_type: str = "promotional",
        channel: str = "email") -> set[int]:
    query = build_audience_query(audience, campaign_type=campaign_type, channel=channel, now=NOW)
    return set(db.execute(query).scalars())


def include(*rules: dict[str, Any]) -> dict[str, Any]:
    return {"include": list(rules)}


def test_purchase_rules(db: Session) -> None:
    shop = make_business(db)
    tenun = make_product(db, shop, category="kerajinan_tangan", price=300_000, sku="TNN-01")
    madu = make_product(db, shop, category="makanan_olahan", price=100_000, sku="MD-01")
    recent_tenun = make_customer(db, marketing=True)
    make_order(db, recent_tenun, [tenun], at=NOW - 30 * DAY)
    old_madu = make_customer(db, marketing=True)
    make_order(db, old_madu, [(madu, 2)], at=NOW - 400 * DAY)
    old_tenun = make_customer(db, marketing=True)
    make_order(db, old_tenun, [tenun], at=NOW - 400 * DAY)
    make_order(db, old_tenun, [tenun], at=NOW - 200 * DAY)
    cancelled = make_customer(db, marketing=True)
    make_order(db, cancelled, [tenun], at=NOW - 2 * DAY, status="cancelled")
    never = make_customer(db, marketing=True)
    a, b, c, x, n = recent_tenun.id, old_madu.id, old_tenun.id, cancelled.id, never.id

    assert ids(db, include({"purchased_category": "kerajinan_tangan"})) == {a, c}
    assert ids(db, include({"purchased_category": "kerajinan_tangan", "within_days": 365})) == {
        a, c}
    assert ids(db, include({"purchased_category": "kerajinan_tangan", "within_days": 100})) == {a}
    assert ids(db, include({"purchased_product": "MD-01"})) == {b}
    assert ids(db, include({"purchased_product": tenun.id, "within_days": 60})) == {a}
    assert ids(db, include({"purchased_product": str(madu.id)})) == {b}
    assert ids(db, include({"purchased_within_days": 7})) == set()  # cancelled is no purchase
    assert ids(db, include({"purchased_within_days": 250})) == {a, c}
    # win-back: bought before, nothing in the last 90 days; never-buyers are not "lapsed"
    assert ids(db, include({"no_purchase_days": 90})) == {b, c}
    # spend: a=300k, b=200k, c=600k (two orders), x and n = 0
    assert ids(db, include({"total_spend_min": 300_000})) == {a, c}
    assert ids(db, include({"total_spend_max": 250_000})) == {b, x, n}
    assert ids(db, include({"total_spend_min": 250_000, "within_days": 365})) == {a, c}
    assert ids(db, include({"total_spend_min": 400_000, "within_days": 365})) == set()
    assert ids(db, include({"total_spend_min": 150_000, "total_spend_max": 350_000})) == {a, b}


def test_kecamatan_tag_engagement_and_all(db: Session) -> None:
    soe = make_customer(db, kecamatan_code="53.02.01", tags=["tenun", "vip"], marketing=True)
    mollo = make_customer(db, kecamatan_code="53.02.03", tags=["madu"], marketing=True)
    nowhere = make_customer(db, kecamatan_code=None, tags=[], marketing=True)
    make_event(db, soe, type="click", at=NOW - 40 * DAY)
    make_event(db, mollo, type="open", at=NOW - 3 * DAY)
    make_event(db, nowhere, type="open", at=NOW - 1 * DAY, suspected_bot=True)
    make_event(db, nowhere, type="delivered", at=NOW - 1 * DAY)

    assert ids(db, include({"kecamatan": "53.02.01"})) == {soe.id}
    assert ids(db, include({"kecamatan": ["53.02.01", "53.02.03"]})) == {soe.id, mollo.id}
    assert ids(db, include({"tag": "vip"})) == {soe.id}
    assert ids(db, include({"tag": "madu"})) == {mollo.id}
    assert ids(db, include({"tag": "ti"})) == set()  # whole elements, not substrings
    assert ids(db, include({"engaged_within_days": 30})) == {mollo.id}
    assert ids(db, include({"engaged_within_days": 60})) == {soe.id, mollo.id}
    assert ids(db, include({"all": True})) == {soe.id, mollo.id, nowhere.id}
    assert ids(db, {}) == {soe.id, mollo.id, nowhere.id}


def test_include_is_and_exclude_is_or_and_any_is_or(db: Session) -> None:
    shop = make_business(db)
    tenun = make_product(db, shop)
    a = make_customer(db, kecamatan_code="53.02.01", tags=["vip"], marketing=True)
    b = make_customer(db, kecamatan_code="53.02.01", tags=[], marketing=True)
    c = make_customer(db, kecamatan_code="53.02.05", tags=["vip"], marketing=True)
    d = make_customer(db, kecamatan_code="53.02.05", tags=[], marketing=True)
    make_order(db, b, [tenun], at=NOW - 2 * DAY)

    assert ids(db, include({"kecamatan": "53.02.01"}, {"tag": "vip"})) == {a.id}
    assert ids(db, {"include": [{"all": True}],
                    "exclude": [{"tag": "vip"}, {"purchased_within_days": 7}]}) == {d.id}
    assert ids(db, include({"any": [{"tag": "vip"}, {"purchased_within_days": 7}]})) == {
        a.id, b.id, c.id}
    nested = {"any": [{"kecamatan": "53.02.05"}, {"any": [{"purchased_within_days": 7}]}]}
    assert ids(db, {"include": [nested], "exclude": [{"tag": "vip"}]}) == {b.id, d.id}


def test_newest_consent_row_wins(db: Session) -> None:
    withdrawn = make_customer(db, marketing=True, at=NOW - 10 * DAY)
    make_consent(db, withdrawn, granted=False, at=NOW - 1 * DAY)
    regranted = make_customer(db, marketing=False, at=NOW - 10 * DAY)
    make_consent(db, regranted, granted=True, at=NOW - 1 * DAY)
    same_instant = make_customer(db, marketing=True, at=NOW - DAY)
    make_consent(db, same_instant, granted=False, at=NOW - DAY)  # inserted later: wins
    never_asked = make_customer(db)
    whatsapp_only = make_customer(db, phone="6281300000001")
    make_consent(db, whatsapp_only, channel="whatsapp")
    transactional_only = make_customer(db)
    make_consent(db, transactional_only, purpose="transactional")

    assert ids(db, {}) == {regranted.id}
    assert ids(db, {}, channel="whatsapp") == {whatsapp_only.id}
    assert ids(db, include({"consent": "transactional"}),
               campaign_type="transactional") == {transactional_only.id}
    assert ids(db, include({"consent": "marketing", "channel": "whatsapp"}),
               campaign_type="transactional") == {whatsapp_only.id}
    assert never_asked.id not in ids(db, {}, campaign_type="newsletter")


def test_suppression_and_missing_address_exclude(db: Session) -> None:
    ok = make_customer(db, phone="6281300000002", marketing=True)
    make_consent(db, ok, channel="whatsapp")
    unsubscribed = make_customer(db, email="Yohana@Contoh.id", marketing=True)
    bounced = make_customer(db, marketing=True)
    no_email = make_customer(db, email=None, phone="6281300000003", marketing=True)
    make_consent(db, no_email, channel="whatsapp")
    wa_stopped = make_customer(db, phone="6281300000004", marketing=True)
    make_consent(db, wa_stopped, channel="whatsapp")
    make_suppression(db, "yohana@contoh.id", reason="unsubscribed")
    make_suppression(db, bounced.email or "", reason="bounced")
    make_suppression(db, "6281300000004", channel="whatsapp", reason="manual")

    assert ids(db, {}) == {ok.id, wa_stopped.id}
    assert unsubscribed.id not in ids(db, {}, campaign_type="transactional")
    assert ids(db, {}, channel="whatsapp") == {ok.id, no_email.id}
    assert ids(db, {}, campaign_type="transactional") == {ok.id, wa_stopped.id}


def _sent(db: Session, customer: Any, *, type: str, days_ago: float, n: int = 1,
          channel: str = "email", status: str = "sent") -> None:
    for _ in range(n):
        run = make_run(db, make_campaign(db, type=type))
        make_delivery(db, run, customer, channel=channel, status=status,
                      at=NOW - timedelta(days=days_ago))


def test_frequency_cap_counts_only_recent_sent_marketing_on_the_channel(db: Session) -> None:
    capped = make_customer(db, marketing=True)
    _sent(db, capped, type="promotional", days_ago=1)
    _sent(db, capped, type="newsletter", days_ago=6)
    old = make_customer(db, marketing=True)
    _sent(db, old, type="promotional", days_ago=1)
    _sent(db, old, type="promotional", days_ago=8)
    transactional = make_customer(db, marketing=True)
    _sent(db, transactional, type="promotional", days_ago=1)
    _sent(db, transactional, type="transactional", days_ago=1, n=3)
    not_sent = make_customer(db, marketing=True)
    _sent(db, not_sent, type="promotional", days_ago=1)
    _sent(db, not_sent, type="promotional", days_ago=1, status="failed")
    _sent(db, not_sent, type="promotional", days_ago=1, status="pending")
    other_channel = make_customer(db, phone="6281300000005", marketing=True)
    _sent(db, other_channel, type="promotional", days_ago=1, n=2, channel="whatsapp")
    fresh = make_customer(db, marketing=True)
    everyone = {capped.id, old.id, transactional.id, not_sent.id, other_channel.id, fresh.id}

    cap = {"frequency_cap": {"max": 2, "per_days": 7}}
    assert ids(db, cap) == everyone - {capped.id}
    assert ids(db, {"frequency_cap": {"max": 1, "per_days": 7}}) == {other_channel.id, fresh.id}
    assert ids(db, cap, campaign_type="transactional") == everyone
    assert ids(db, {"frequency_cap": None}) == everyone


def test_count_breakdown_adds_up(db: Session) -> None:
    for _ in range(3):
        make_customer(db, marketing=True, kecamatan_code="53.02.01")
    make_customer(db, marketing=False, kecamatan_code="53.02.01")
    make_customer(db, kecamatan_code="53.02.01")
    suppressed = make_customer(db, marketing=True, kecamatan_code="53.02.01")
    make_suppression(db, suppressed.email or "", reason="complained")
    busy = make_customer(db, marketing=True, kecamatan_code="53.02.01")
    _sent(db, busy, type="promotional", days_ago=1)
    elsewhere = make_customer(db, marketing=True, kecamatan_code="53.02.09")
    audience = {"include": [{"kecamatan": "53.02.01"}],
                "frequency_cap": {"max": 1, "per_days": 7}}

    counts = count_audience(db, audience, campaign_type="promotional", now=NOW)
    assert counts == AudienceCount(matched=7, without_consent=2, suppressed=1,
                                   frequency_capped=1, total=3)
    assert counts.total == len(ids(db, audience))
    assert elsewhere.id not in ids(db, audience)
    transactional = count_audience(db, audience, campaign_type="transactional", now=NOW)
    assert transactional == AudienceCount(matched=7, without_consent=0, suppressed=1,
                                          frequency_capped=0, total=6)


@pytest.mark.parametrize("batch_size", [7])
def test_keyset_iteration_returns_each_id_once(db: Session, batch_size: int) -> None:
    wanted = [make_customer(db, marketing=True).id for _ in range(23)]
    unwanted = make_customer(db, marketing=False)
    make_customer(db, marketing=True, email=None)  # no address

    batches = list(iter_audience_ids(db, {}, campaign_type="promotional", now=NOW,
                                     batch_size=batch_size))
    assert [len(b) for b in batches] == [7, 7, 7, 2]
    flat = [cid for batch in batches for cid in batch]
    assert flat == sorted(wanted)
    assert unwanted.id not in flat
    exact = list(iter_audience_ids(db, {}, campaign_type="promotional", now=NOW, batch_size=23))
    assert exact == [sorted(wanted)]
    assert list(iter_audience_ids(db, {"include": [{"tag": "nobody"}]},
                                  campaign_type="promotional", now=NOW)) == []


def test_hostile_values_are_bound_parameters(db: Session) -> None:
    shop = make_business(db)
    product = make_product(db, shop, sku="SKU-AMAN")
    victim = make_customer(db, marketing=True, tags=["vip"])
    make_order(db, victim, [product], at=NOW - DAY)
    hostile = [
        "x' OR '1'='1",
        "vip') OR 1=1 --",
        "'; DROP TABLE customer; --",
        '"]\' OR json_each.value IS NOT NULL --',
    ]
    for value in hostile:
        assert ids(db, include({"tag": value})) == set()
        assert ids(db, include({"kecamatan": value})) == set()
        assert ids(db, include({"kecamatan": [value, "53.02.99"]})) == set()
        assert ids(db, include({"purchased_product": value})) == set()
        assert ids(db, include({"purchased_category": value})) == set()
    assert db.execute(select(func.count()).select_from(Customer)).scalar_one() == 1
    assert ids(db, include({"tag": "vip"})) == {victim.id}


@pytest.mark.parametrize(
    ("audience", "fragment"),
    [
        ({"include": [{"purchased_kategori": "x"}]}, "purchased_kategori"),
        ({"include": [{"tag": "a", "kecamatan": "53.02.01"}]}, "kecamatan"),
        ({"include": [{"tag": "a", "within_days": 3}]}, "within_days"),
        ({"include": [{"within_days": 3}]}, "within_days"),
        ({"include": [{"no_purchase_days": -5}]}, "no_purchase_days"),
        ({"include": [{"purchased_within_days": True}]}, "purchased_within_days"),
        ({"include": [{"all": "yes"}]}, "all"),
        ({"include": [{"any": []}]}, "any"),
        ({"include": [{"consent": "newsletter"}]}, "consent"),
        ({"exclude": ["tag"]}, "tag"),
        ({"incldue": []}, "incldue"),
        ({"frequency_cap": {"max": 0, "per_days": 7}}, "frequency_cap.max"),
    ],
)
def test_unknown_or_malformed_rules_are_refused(audience: dict[str, Any], fragment: str) -> None:
    with pytest.raises(AudienceRuleError, match=fragment):
        build_audience_query(audience, campaign_type="promotional", now=NOW)


def test_unsupported_channel_and_type_are_refused() -> None:
    with pytest.raises(AudienceRuleError, match="facebook"):
        build_audience_query({}, campaign_type="promotional", channel="facebook", now=NOW)
    with pytest.raises(AudienceRuleError, match="flash_sale"):
        build_audience_query({}, campaign_type="flash_sale", now=NOW)


def test_a_rule_repeating_the_consent_gate_is_evaluated_once_and_others_still_count(
        db: Session) -> None:
    """Issue 22: ``consent: marketing`` in the rules is the gate itself; the recipients'
    query leaves it out (one consent ``EXISTS``), and gives the same people. A consent
    rule of another channel or purpose is not the gate and still holds."""
    both = make_customer(db, phone="6281300000002", marketing=True)
    make_consent(db, both, channel="whatsapp")
    email_only = make_customer(db, phone="6281300000003", marketing=True)
    neither = make_customer(db, phone="6281300000004")
    make_consent(db, neither, purpose="transactional")
    repeated = include({"consent": "marketing"})
    on_channel = include({"consent": "marketing", "channel": "email"})
    query = build_audience_query(repeated, campaign_type="promotional", now=NOW)
    assert str(query).count("FROM consent") == 2  # the newest row, and no newer one
    assert str(build_audience_query(on_channel, campaign_type="promotional", now=NOW)
               ).count("FROM consent") == 2
    assert ids(db, repeated) == ids(db, on_channel) == ids(db, {}) == {both.id, email_only.id}
    assert ids(db, include({"consent": "marketing", "channel": "whatsapp"})) == {both.id}
    assert ids(db, include({"consent": "transactional"})) == set()
    counted = count_audience(db, repeated, campaign_type="promotional", now=NOW)
    assert (counted.matched, counted.without_consent, counted.total) == (2, 0, 2)
