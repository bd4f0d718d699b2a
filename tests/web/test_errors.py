"""One engine error root (engine.common.errors) translated at the edges only: one FastAPI
handler for the web (JSON for /api/, the error page elsewhere) and one for the CLI."""

from __future__ import annotations

import pickle

import pytest
import typer
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from engine.campaign.audience import AudienceRuleError
from engine.cli.app import EngineErrorGroup, app
from engine.common.errors import BadRequest, Conflict, EngineError, InvalidInput, NotFound
from engine.common.i18n import using_lang
from engine.config import Settings
from engine.reporting.periods import ReportError
from engine.social.accounts import AccountError
from engine.umkm.apikeys import UnknownBusiness, issue_api_key
from engine.umkm.businesses import (
    BusinessError,
    DuplicateError,
    InvalidDataError,
    NotEligibleError,
    NotFoundError,
)
from engine.umkm.users import UserError
from tests.factories import make_business
from tests.web_helpers import (
    World,
    world_fixture,  # noqa: F401 - the "world" fixture
)
from web.app import create_app


@pytest.mark.parametrize(("error", "status", "bases"), [
    (ReportError("report.bad_by", by="x", choices="a"), 400, (BadRequest, ValueError)),
    (AccountError("acct.empty_token"), 400, (BadRequest, ValueError)),
    (UserError("user.err.username"), 400, (BadRequest,)),
    (BusinessError("biz.err.sku_ambiguous", ref="X"), 400, ()),
    (NotFoundError("biz.err.product_not_found", ref="X"), 404, (BusinessError, NotFound)),
    (UnknownBusiness("apikey.err.unknown_business", id=7), 404, (NotFound, LookupError)),
    (DuplicateError("biz.err.duplicate_sku", sku="X"), 409, (BusinessError, Conflict)),
    (NotEligibleError(("a",), product="P", campaign="c"), 409, (BusinessError, Conflict)),
    (InvalidDataError("biz.err.price"), 422, (BusinessError, InvalidInput)),
    (AudienceRuleError("audience.bad_channel", channel="fax"), 422, (InvalidInput, ValueError)),
], ids=lambda v: type(v).__name__ if isinstance(v, Exception) else None)
def test_every_engine_error_has_one_root_and_a_status(error: EngineError, status: int,
                                                      bases: tuple[type, ...]) -> None:
    assert isinstance(error, EngineError) and error.http_status == status
    assert all(isinstance(error, base) for base in bases)


def test_the_text_is_the_catalog_message_in_the_language_of_the_moment() -> None:
    error = NotFoundError("biz.err.business_not_found", ref="42")
    assert error.code == "biz.err.business_not_found" and error.params == {"ref": "42"}
    assert str(error) == "UMKM '42' tidak ditemukan (gunakan ID atau NIB)."
    with using_lang("en"):
        assert str(error) == "UMKM '42' not found (use the ID or the NIB)."
    assert error.message("en") == "UMKM '42' not found (use the ID or the NIB)."


def test_a_rules_own_explanation_is_kept_word_for_word() -> None:
    assert str(InvalidDataError.because("NIB harus 13 digit")) == "NIB harus 13 digit"


def test_errors_survive_pickling_with_their_parameters() -> None:
    refused = NotEligibleError(("belum binaan",), product="Tenun", campaign="promo")
    again = pickle.loads(pickle.dumps(refused))
    assert type(again) is NotEligibleError and again.reasons == ("belum binaan",)
    assert str(again) == str(refused) and "promo" in str(again)


def test_cli_prints_an_escaping_engine_error_like_fail_and_exits_1() -> None:
    assert isinstance(typer.main.get_command(app), EngineErrorGroup)
    demo = typer.Typer(cls=EngineErrorGroup)

    @demo.command("boom")
    def boom() -> None:
        raise NotFoundError("biz.err.business_not_found", ref="42")

    @demo.command("ok")
    def ok() -> None:
        typer.echo("baik")

    result = CliRunner().invoke(demo, ["boom"])
    assert result.exit_code == 1
    assert result.output == "Galat: UMKM '42' tidak ditemukan (gunakan ID atau NIB).\n"
    assert CliRunner().invoke(demo, ["ok"]).output == "baik\n"


def test_api_answers_engine_errors_as_json_detail(settings: Settings, db: Session) -> None:
    business = make_business(db)
    key = issue_api_key(db, business.id)
    db.commit()
    with TestClient(create_app(settings)) as client:
        response = client.get("/api/v1/orders/TIDAK-ADA",
                              headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 404
    assert response.json() == {"detail": "Pesanan 'TIDAK-ADA' tidak ditemukan."}


def test_pages_answer_engine_errors_with_the_error_page_and_keep_cookies(
        world: World) -> None:
    client = world.client("pemilik-a")
    response = client.get("/portal/produk/999999?lang=en")
    assert response.status_code == 404
    assert "Page not found." in response.text and "<html" in response.text
    assert response.cookies.get("umkm_lang") == "en"
    staff = world.client("staf")
    bad = staff.get("/dinas/laporan/unduh?periode=bulan-lalu")
    assert bad.status_code == 400
    assert "Periode &#39;bulan-lalu&#39; tidak dikenal" in bad.text
