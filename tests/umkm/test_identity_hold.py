"""Issue 13 finding 11: a business whose identity changed is held out of every catalogue
(the cached verdict fails ``verifikasi``) until the Dinas verifies it again; approved and
new (pending) businesses are judged by Pasal 10 alone, as before."""

from __future__ import annotations

from sqlalchemy.orm import Session

from engine.campaign.catalog import eligible_products
from engine.models import Verification
from engine.umkm import businesses
from engine.umkm.eligibility import HOLD, check_business
from tests.web_helpers import make_eligible_business


def _catalogue(db: Session) -> set[int]:
    return {p.id for p in eligible_products(db, campaign_key="promo-x",
                                            campaign_tags=["semua-produk"])}


def test_changed_identity_is_held_until_verified_again(db: Session) -> None:
    business, product = make_eligible_business(db, "Tenun Uji")
    business.verification = Verification.verified
    assert businesses.refresh_eligibility(db, business).eligible
    assert product.id in _catalogue(db)
    business.verification = Verification.changed
    verdict = businesses.refresh_eligibility(db, business)
    db.flush()
    assert not verdict.eligible and not business.eligible
    assert [c.key for c in verdict.failures] == [HOLD]
    assert HOLD in business.eligibility["failures"]
    assert product.id not in _catalogue(db)
    assert businesses.opt_in_problems(db, product)  # opting in again is refused too
    business.verification = Verification.verified
    assert businesses.refresh_eligibility(db, business).eligible
    db.flush()
    assert product.id in _catalogue(db)


def test_pending_and_verified_businesses_are_not_held(db: Session) -> None:
    business, _ = make_eligible_business(db, "Madu Uji")
    for state in (Verification.pending, Verification.verified):
        business.verification = state
        verdict = check_business(business, lang="en")
        assert verdict.eligible and HOLD not in {c.key for c in verdict.criteria}
