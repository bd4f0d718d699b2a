"""Issue 19: Typer's own help and error texts follow the CLI's language (Indonesian by
default, English with ``UMKM_LANG=en`` or ``--lang en``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from engine.cli.app import app
from engine.cli.help_i18n import translate
from engine.common.i18n import using_lang
from engine.config import reset_settings

WIDE = {"COLUMNS": "200"}


@pytest.fixture
def english(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("UMKM_LANG", "en")
    reset_settings()
    yield
    monkeypatch.delenv("UMKM_LANG")
    reset_settings()


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner(env=WIDE).invoke(app, list(args))
    return result.exit_code, result.output


def test_root_help_is_indonesian() -> None:
    code, output = _run("--help")
    assert code == 0
    assert "Show this message and exit" not in output
    assert "Tampilkan pesan ini lalu keluar." in output
    assert "Penggunaan:" in output and "Usage:" not in output
    assert "─ Opsi ─" in output and "─ Perintah ─" in output


def test_subcommand_help_and_errors_are_indonesian() -> None:
    code, output = _run("campaign", "ab", "--help")
    assert code == 0 and "─ Argumen ─" in output and "[wajib]" in output
    code, output = _run("campaign", "ab")
    assert code == 2 and "Argumen 'run_id' belum diisi." in output
    assert "Coba '" in output and "untuk bantuan" in output and "─ Galat ─" in output
    code, output = _run("kampanye")
    assert code == 2
    assert "Perintah 'kampanye' tidak ada. Apakah maksud Anda 'campaign'?" in output
    code, output = _run("campaign", "ab", "x")
    assert "Nilai tidak sah untuk 'run_id': harus berupa bilangan bulat" in output
    code, output = _run("campaign", "ab", "--banyak")
    assert code == 2 and "Opsi tidak dikenal: --banyak" in output


@pytest.mark.usefixtures("english")
def test_english_with_the_language_setting() -> None:
    code, output = _run("--help")
    assert code == 0 and "Show this message and exit." in output and "Usage:" in output
    code, output = _run("campaign", "ab")
    assert "Missing argument 'run_id'." in output and "Try '" in output


def test_lang_option_switches_the_subcommand_help() -> None:
    code, output = _run("--lang", "en", "campaign", "ab", "--help")
    assert code == 0 and "Show this message and exit." in output and "─ Arguments ─" in output
    code, output = _run("campaign", "ab", "--help")
    assert "Tampilkan pesan ini lalu keluar." in output  # back to Indonesian


def test_unknown_texts_pass_through() -> None:
    assert translate("Something Typer adds later.") == "Something Typer adds later."
    with using_lang("en"):
        assert translate("Options") == "Options"
    assert translate("Options") == "Opsi"


def test_usage_placeholders_are_indonesian() -> None:
    code, output = _run("campaign", "--help")
    assert code == 0
    assert "campaign [OPSI] PERINTAH [ARGUMEN]..." in output
    assert "[OPTIONS]" not in output and "COMMAND" not in output
    code, output = _run("report", "--help")
    assert "report [OPSI]" in output


def test_usage_placeholders_stay_english_in_english(english: None) -> None:
    code, output = _run("campaign", "--help")
    assert code == 0 and "campaign [OPTIONS] COMMAND [ARGS]..." in output
