"""Pydantic's errors become Indonesian sentences through ONE function
(engine.common.validation_text.describe_error), in the campaign loader and in the
annual plan YAML alike (issue 19: no raw "String should match pattern ...")."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Literal

import pytest
from pydantic import BaseModel, ConfigDict, Field, HttpUrl, ValidationError

from engine.campaign import loader
from engine.common.i18n import using_lang
from engine.common.validation_text import describe_error
from engine.reporting import plan_file
from engine.reporting.plan_file import PlanFileError, parse_plan_text

ENGLISH = ("Input should", "Field required", "Extra inputs", "String should", "Value error",
           "greater than", "valid integer", "unable to parse")
COMMON_TYPES = {"missing", "extra_forbidden", "int_parsing", "string_too_long",
                "greater_than_equal", "literal_error", "enum", "url_parsing", "bool_parsing",
                "datetime_parsing"}


class Colour(Enum):
    merah = "merah"
    biru = "biru"


class Sample(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    count: int = Field(0, ge=1)
    code: str = Field("", max_length=3)
    kind: Literal["promotional", "newsletter"] = "promotional"
    colour: Colour = Colour.merah
    link: HttpUrl | None = None
    active: bool = True
    at: datetime | None = None
    number: int = 0


class StrictTime(BaseModel):
    """A JSON document in strict mode: where pydantic says ``datetime_parsing``."""

    model_config = ConfigDict(strict=True)
    at: datetime


BAD = {"count": 0, "code": "ABCDE", "kind": "promo", "colour": "hijau", "link": "bukan url",
       "active": "mungkin", "at": "besok pagi", "number": "dua", "warna": "x"}


def _errors() -> dict[str, str]:
    with pytest.raises(ValidationError) as caught:
        Sample.model_validate(BAD)
    with pytest.raises(ValidationError) as strict:
        StrictTime.model_validate_json('{"at": "besok pagi"}')
    return {e["type"]: describe_error(e, allowed=list(Sample.model_fields))
            for e in [*caught.value.errors(), *strict.value.errors()]}


def test_every_common_pydantic_type_is_an_indonesian_sentence() -> None:
    messages = _errors()
    assert set(messages) == COMMON_TYPES | {"datetime_from_date_parsing"}
    assert messages["missing"] == "kunci wajib 'name' tidak ada"
    assert messages["extra_forbidden"].startswith("kunci 'warna' tidak dikenal")
    assert messages["int_parsing"] == "harus bilangan bulat, bukan 'dua'"
    assert messages["string_too_long"] == "terlalu panjang: paling banyak 3 karakter"
    assert messages["greater_than_equal"] == "harus paling sedikit 1, bukan 0"
    assert messages["literal_error"] == (
        "nilai 'promo' tidak sah, apakah maksud Anda 'promotional'?; "
        "yang diharapkan: promotional, newsletter")
    assert messages["enum"] == "nilai 'hijau' tidak sah; yang diharapkan: merah, biru"
    assert messages["url_parsing"].startswith("alamat web 'bukan url' tidak sah")
    assert messages["bool_parsing"] == "harus true atau false, bukan 'mungkin'"
    assert messages["datetime_parsing"].startswith("tanggal-waktu 'besok pagi' tidak sah")
    assert messages["datetime_from_date_parsing"] == messages["datetime_parsing"]
    for text in messages.values():
        assert not any(word in text for word in ENGLISH), text


def test_english_on_request() -> None:
    with using_lang("en"):
        messages = _errors()
    assert messages["url_parsing"].startswith("web address 'bukan url' is not valid")


def test_loader_and_plan_file_share_the_translation() -> None:
    """No second copy of the table: both modules call the shared function."""
    assert loader.describe_error is describe_error  # type: ignore[attr-defined]
    assert plan_file.describe_error is describe_error  # type: ignore[attr-defined]
    assert not hasattr(loader, "_TYPE_MESSAGES") and not hasattr(plan_file, "_TYPE_KEYS")


CAMPAIGN = """\
version: 1
id: uji-bahasa
type: promo
schedule: {start: 2026-12-01 09:00, send_window: {from: "08:00", to: "20:00"}}
audience:
  include: [{consent: marketing}]
  frequency_cap: {max: dua, per_days: 7}
channels:
  email: {template: email/promotional.mjml, subject: "Halo"}
  warna: merah
"""


def test_campaign_file_messages_are_indonesian() -> None:
    _spec, errors = loader.check_text(CAMPAIGN, "uji.yaml")
    messages = [e.message for e in errors]
    assert any("kunci wajib 'name' tidak ada" in m for m in messages), messages
    assert any("nilai 'promo' tidak sah" in m for m in messages), messages
    assert any("harus bilangan bulat, bukan 'dua'" in m for m in messages), messages
    for text in messages:
        assert not any(word in text for word in ENGLISH), text


PLAN = """\
title: %s
targets:
  pelatihan: [1, 2, dua, 1]
budget:
  - {source: pajak, amount: -5}
partners:
  - {kind: pemerintah, warna: merah}
""" % ("x" * 201)


def test_plan_file_messages_are_indonesian() -> None:
    with pytest.raises(PlanFileError) as caught:
        parse_plan_text(PLAN, "rencana.yaml", 2026)
    messages = {p.message for p in caught.value.problems}
    assert "terlalu panjang: paling banyak 200 karakter" in messages
    assert "harus bilangan bulat, bukan 'dua'" in messages
    assert "nilai 'pajak' tidak sah; yang diharapkan: apbd, apbn, lainnya" in messages
    assert "harus paling sedikit 0, bukan -5" in messages
    assert "kunci wajib 'name' tidak ada" in messages
    assert any(m.startswith("kunci 'warna' tidak dikenal") for m in messages), messages
    for text in messages:
        assert not any(word in text for word in ENGLISH), text


def test_an_unreadable_file_is_explained_in_indonesian(tmp_path: Path) -> None:
    """The C library's "No such file or directory" is English on an Indonesian screen."""
    with pytest.raises(loader.CampaignValidationError) as missing:
        loader.load_campaign(tmp_path / "tidak-ada.yaml")
    assert missing.value.errors[0].message == (
        "berkas tidak bisa dibaca: berkas atau folder tidak ada")
    with pytest.raises(loader.CampaignValidationError) as folder:
        loader.load_campaign(tmp_path)
    assert "No such" not in str(folder.value) and "Is a directory" not in str(folder.value)
