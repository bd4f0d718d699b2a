"""Issue 17: ``umkm account connect`` never takes a token as an argument.

A token on the command line stays in the shell history and in every user's process
list; it is read at a hidden prompt, from ``--token-file`` or from stdin instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from engine.cli.app import app
from engine.config import Settings
from engine.models import SocialAccount
from engine.social import accounts

runner = CliRunner(env={"COLUMNS": "200"})
TOKEN = "EAABwzLixnjYBO-token-dari-berkas-0042"
ARGS = ("account", "connect", "facebook", "--id", "104857600", "--name", "Dinas UMKM TTS")


def cli(*args: str, stdin: str | None = None) -> Any:
    return runner.invoke(app, [*ARGS, *args], input=stdin)


def _token(db: Session) -> str:
    return accounts.credentials(db.scalars(select(SocialAccount)).one()).access_token


def test_the_token_option_is_gone(settings: Settings, db: Session) -> None:
    result = cli("--token", TOKEN)
    assert result.exit_code == 2 and "--token" in result.output
    assert db.scalars(select(SocialAccount)).first() is None


def test_token_from_a_file_stripped_and_a_warning_when_others_can_read_it(
        settings: Settings, db: Session, tmp_path: Path) -> None:
    path = tmp_path / "token.txt"
    path.write_text(f"  {TOKEN}\n")
    path.chmod(0o600)
    private = cli("--token-file", str(path))
    assert private.exit_code == 0, private.output
    assert TOKEN not in private.output and "chmod" not in private.output
    assert _token(db) == TOKEN
    path.chmod(0o644)
    shared = cli("--token-file", str(path))
    assert shared.exit_code == 0 and "chmod 600" in shared.output


def test_an_empty_or_missing_file_is_refused_in_indonesian(
        settings: Settings, db: Session, tmp_path: Path) -> None:
    empty = tmp_path / "kosong.txt"
    empty.write_text(" \n")
    refused = cli("--token-file", str(empty))
    assert refused.exit_code == 1 and "kosong" in refused.output
    missing = cli("--token-file", str(tmp_path / "tidak-ada.txt"))
    assert missing.exit_code == 1 and "tidak dapat dibaca" in missing.output
    assert "Traceback" not in missing.output
    assert db.scalars(select(SocialAccount)).first() is None


def test_token_from_stdin_and_from_the_hidden_prompt(settings: Settings, db: Session) -> None:
    piped = cli("--token-file", "-", stdin=TOKEN + "\n")
    assert piped.exit_code == 0, piped.output
    assert _token(db) == TOKEN
    prompted = cli(stdin="EAAB-diketik-di-prompt\n")
    assert prompted.exit_code == 0, prompted.output
    assert "EAAB-diketik-di-prompt" not in prompted.output  # hidden input is not echoed
    db.expire_all()
    assert _token(db) == "EAAB-diketik-di-prompt"
