"""Issue 13: who may lift a withdrawal (engine.customers.consent, .optin)."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.common.errors import Conflict
from engine.customers import consent, optin
from engine.models import Consent, Suppression
from tests.factories import make_customer, make_suppression


def _rows(db: Session) -> list[tuple[str, str, str | None]]:
    return sorted((s.channel, str(s.reason), s.detail) for s in db.scalars(select(Suppression)))


@pytest.mark.parametrize(("source", "channel"), [
    ("one-click", "email"), ("preference-centre", "email"), ("whatsapp:opt-out", "whatsapp"),
    ("api:2:kasir", "email"),  # another business's record of the person's withdrawal
])
def test_a_business_cannot_lift_a_withdrawal_it_did_not_record(
        db: Session, source: str, channel: str) -> None:
    customer = make_customer(db, email="ani@contoh.id", phone="6281200000001")
    consent.unsubscribe(db, customer, channel, source)
    before = _rows(db)
    with pytest.raises(Conflict) as refused:
        consent.grant_by_business(db, customer, channel, 1, "checkout")
    assert refused.value.http_status == 409 and "Dinas" in str(refused.value)
    assert _rows(db) == before and not consent.has_consent(db, customer.id, channel)


def test_a_complaint_stands_against_every_business(db: Session) -> None:
    customer = make_customer(db, email="ani@contoh.id")
    consent.suppress(db, "email", "ani@contoh.id", "complained", detail="webhook: abuse")
    with pytest.raises(Conflict):
        consent.grant_by_business(db, customer, "email", 1, "checkout")


def test_a_business_may_correct_its_own_withdrawal_and_record_fresh_consent(
        db: Session) -> None:
    customer = make_customer(db, email="ani@contoh.id")
    consent.withdraw(db, customer, "email", consent.business_source(1, "kasir"))
    row, lifted = consent.grant_by_business(db, customer, "email", 1, "checkout")
    assert (row.source, lifted) == ("api:1:checkout", True)
    fresh = make_customer(db, email="baru@contoh.id")
    row, lifted = consent.grant_by_business(db, fresh, "email", 12, "checkout")
    assert (row.source, lifted) == ("api:12:checkout", False)
    with pytest.raises(Conflict):  # business 12 is not business 1 ("api:1" prefix)
        consent.withdraw(db, fresh, "email", consent.business_source(1, "x"))
        consent.grant_by_business(db, fresh, "email", 12, "checkout")


def test_a_bounce_does_not_block_consent_and_is_never_lifted(db: Session) -> None:
    customer = make_customer(db, email="ani@contoh.id")
    make_suppression(db, "ani@contoh.id", reason="bounced")
    _, lifted = consent.grant_by_business(db, customer, "email", 1, "checkout")
    _, lifted_by_person = consent.confirm_opt_in(db, customer, "email")
    assert (lifted, lifted_by_person) == (False, False)
    assert [r[1] for r in _rows(db)] == ["bounced"]


def test_confirmed_opt_in_lifts_only_the_owner_channel(db: Session) -> None:
    customer = make_customer(db, email="ani@contoh.id", phone="6281200000001")
    for channel in ("email", "whatsapp"):
        consent.unsubscribe(db, customer, channel, "one-click")
    found = optin.verify(db, optin.make_token(customer, "whatsapp"))
    assert (found.customer.id, found.channel, found.address) == (
        customer.id, "whatsapp", "6281200000001")
    row, lifted = consent.confirm_opt_in(db, found.customer, found.channel)
    assert (row.source, lifted) == ("confirmed_opt_in", True)
    assert [r[0] for r in _rows(db)] == ["email"]
    assert consent.has_consent(db, customer.id, "whatsapp")
    assert not consent.has_consent(db, customer.id, "email")
    # now the person has opted in again: a business may record consent there
    consent.grant_by_business(db, customer, "whatsapp", 1, "checkout")


def test_a_token_stops_working_when_the_address_changes(db: Session) -> None:
    customer = make_customer(db, email="ani@contoh.id")
    token = optin.make_token(customer, "email")
    customer.email = "orang.lain@contoh.id"
    db.flush()
    with pytest.raises(optin.InvalidConfirmation) as refused:
        optin.verify(db, token)
    assert not refused.value.expired
    assert optin.confirmation_url("https://umkm.ttskab.go.id/", customer, "email").startswith(
        "https://umkm.ttskab.go.id/u/konfirmasi/")


def test_existing_rows_are_read_as_they_are(db: Session) -> None:
    """No migration: old rows (legacy sources, no detail) are judged as stored."""
    customer = make_customer(db, email="ani@contoh.id")
    make_suppression(db, "ani@contoh.id")  # an old unsubscribe without detail
    with pytest.raises(Conflict):
        consent.grant_by_business(db, customer, "email", 1, "checkout")
    assert db.scalars(select(Consent)).all() == []
