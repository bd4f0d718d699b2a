"""Settings precedence, secrets masking, encryption and migrations on both backends."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import inspect

from engine.common import crypto
from engine.config import Secret, load_settings
from engine.db import get_engine
from engine.models import Base


def test_environment_beats_dotenv_beats_defaults(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("BATCH_SIZE=111\nBASE_URL=https://dotenv.example\nSMTP_PORT=2525\n")
    s = load_settings(env={"BATCH_SIZE": "222"}, dotenv_path=str(dotenv))
    assert s.batch_size == 222  # environment wins
    assert s.base_url == "https://dotenv.example"  # then .env
    assert s.smtp_port == 2525
    assert s.graph_version == "v23.0"  # then defaults
    assert s.embedded and s.effective_database_url.startswith("sqlite:///")


def test_secrets_never_show_in_repr() -> None:
    s = load_settings(env={"SECRET_KEY": "super-secret-value", "SMTP_PASSWORD": "pw123456"},
                      dotenv_path=None)
    assert "super-secret-value" not in repr(s)
    assert "pw123456" not in repr(s)
    assert s.secret_key == Secret("super-secret-value")


def test_nik_round_trip_and_mask(settings: object) -> None:
    token = crypto.encrypt("5302014107920001", purpose="nik")
    assert "5302014107920001" not in token
    assert crypto.decrypt(token, purpose="nik") == "5302014107920001"
    assert crypto.mask_nik("5302014107920001") == "5302**********01"
    assert crypto.digest("5302014107920001") == crypto.digest("5302014107920001")


def test_migrations_create_every_table(settings: object) -> None:
    names = set(inspect(get_engine()).get_table_names())
    missing = {t.name for t in Base.metadata.sorted_tables} - names
    assert not missing
    assert "alembic_version" in names


def test_tampered_ciphertext_is_refused(settings: object) -> None:
    token = crypto.encrypt("5302014107920001", purpose="nik")
    with pytest.raises(ValueError):
        crypto.decrypt(token[:-4] + "AAAA", purpose="nik")
