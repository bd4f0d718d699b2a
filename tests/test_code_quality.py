"""The codebase stays lint-clean and typed (ruff everywhere, with a complexity limit; mypy
strict on engine/ and channels/, checked on workers/, web/, tests/ and scripts/): a red lint
is a red build."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_ruff_finds_nothing() -> None:
    result = _run(str(BIN / "ruff"), "check", ".", "--output-format", "concise")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_is_clean_strict_on_engine_and_channels_and_on_the_tests() -> None:
    result = _run(str(BIN / "mypy"), "engine", "channels", "workers", "web", "tests", "scripts")
    assert result.returncode == 0, result.stdout + result.stderr
