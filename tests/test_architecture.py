"""The layout of docs/architecture.md, enforced over the source's imports (tests/architecture.py).

The first tests run the rules over the real tree; the others build tiny fake trees that break
one rule each and prove the checker names the offender.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import architecture as arch

ROOT = Path(__file__).resolve().parent.parent


# --- the real tree ------------------------------------------------------------------------

def test_no_import_circles_no_forbidden_or_upward_arrows() -> None:
    problems = arch.check(ROOT)
    assert not problems, "layout rules broken:\n" + "\n".join(problems)


def test_no_module_is_longer_than_600_lines() -> None:
    offenders = arch.long_modules(ROOT)
    assert not offenders, "modules to split:\n" + "\n".join(offenders)


def test_every_engine_subpackage_has_a_floor() -> None:
    packages = {path.name for path in (ROOT / "engine").iterdir()
                if (path / "__init__.py").is_file()}
    # engine/models is the ground floor's data model, a package of table modules.
    assert packages - {"models"} == set(arch.ENGINE_LAYERS) - {"ground"}


# --- fake trees ---------------------------------------------------------------------------

def _tree(root: Path, files: dict[str, str]) -> Path:
    """Write ``{"engine/common/a.py": source}``; every folder on the way gets an __init__.py."""
    for name, source in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        for folder in path.relative_to(root).parents:
            init = root / folder / "__init__.py"
            if folder != Path(".") and not init.exists():
                init.write_text("")
        path.write_text(source)
    return root


def test_a_fake_tree_that_follows_the_rules_passes(tmp_path: Path) -> None:
    _tree(tmp_path, {
        "engine/config.py": "import os\n",
        "engine/db.py": "from engine.config import x\n",
        "engine/common/i18n.py": "from engine import config\nfrom channels.base import y\n",
        "engine/delivery/run.py": "from engine.common.i18n import t\nfrom ..outbox import rows\n",
        "engine/outbox/rows.py": "from engine.db import s\n",
        "engine/cli/app.py": "import web.app\nimport workers.tasks\n",
        "channels/base.py": "import httpx\n",
        "web/app.py": "from engine.delivery import run\n",
        "workers/tasks.py": "from engine.delivery.run import go\n",
    })
    assert arch.check(tmp_path) == []


def test_a_circle_is_named_with_its_lines(tmp_path: Path) -> None:
    _tree(tmp_path, {
        "web/dashboard.py": "import os\nfrom web.portal import verdict\n",
        "web/portal.py": "from web import dashboard\n",
    })
    assert arch.check(tmp_path) == [
        "import circle web.dashboard -> web.portal -> web.dashboard "
        "[web/dashboard.py:2; web/portal.py:1]"]


def test_a_function_level_import_that_closes_a_circle_is_found(tmp_path: Path) -> None:
    _tree(tmp_path, {
        "engine/delivery/dispatch.py": "from engine.delivery import scheduler\n",
        "engine/delivery/scheduler.py": (
            "def plan():\n"
            "    if True:\n"
            "        from engine.delivery.dispatch import send\n"
            "    return send\n"),
    })
    [problem] = arch.check(tmp_path)
    assert problem.startswith("import circle engine.delivery.dispatch -> "
                              "engine.delivery.scheduler -> engine.delivery.dispatch")
    assert "engine/delivery/scheduler.py:3" in problem


def test_a_literal_import_module_call_closes_a_circle(tmp_path: Path) -> None:
    _tree(tmp_path, {
        "channels/base.py": "import importlib\nX = importlib.import_module('channels.sandbox')\n",
        "channels/sandbox.py": "from . import base\n",
    })
    [problem] = arch.check(tmp_path)
    assert "channels.base -> channels.sandbox -> channels.base" in problem


def test_a_relative_import_is_resolved(tmp_path: Path) -> None:
    _tree(tmp_path, {
        "engine/common/crypto.py": "from ..social.plan import posts\n",
        "engine/social/plan.py": "",
    })
    assert arch.check(tmp_path) == [
        "engine/common/crypto.py:1: engine.common.crypto -> engine.social.plan: "
        "common may not import social (above it)"]


def test_an_upward_import_is_named(tmp_path: Path) -> None:
    _tree(tmp_path, {
        "engine/social/publish.py": (
            "import os\n\ndef go():\n    from engine.delivery import beat\n"),
        "engine/delivery/beat.py": "from engine.social import publish\n",
    })
    problems = arch.check(tmp_path)
    assert ("engine/social/publish.py:4: engine.social.publish -> engine.delivery.beat: "
            "social may not import delivery (above it)") in problems


def test_the_ground_floor_may_import_only_log_redaction(tmp_path: Path) -> None:
    _tree(tmp_path, {
        "engine/__init__.py": "from engine.common import logsafe\n",
        "engine/common/logsafe.py": "",
        "engine/models.py": "from engine.common import crypto\n",
        "engine/common/crypto.py": "",
    })
    assert arch.check(tmp_path) == [
        "engine/models.py:1: engine.models -> engine.common.crypto: "
        "ground may not import common (above it)"]


@pytest.mark.parametrize(("source", "line", "reason"), [
    ("channels/email_smtp.py", "from engine.config import Settings",
     "channels import nothing of engine, web or workers"),
    ("engine/reporting/build.py", "from web.app import app", "only engine.cli may import web"),
    ("engine/delivery/beat.py", "import workers.tasks", "only engine.cli may import web"),
    ("workers/tasks.py", "from web import auth", "workers do not import web"),
    ("web/api.py", "from workers.tasks import send", "web does not import workers"),
])
def test_a_forbidden_arrow_is_named(tmp_path: Path, source: str, line: str, reason: str) -> None:
    targets = {"engine/config.py": "", "web/app.py": "", "web/auth.py": "", "workers/tasks.py": ""}
    _tree(tmp_path, {**targets, source: line + "\n"})
    [problem] = arch.check(tmp_path)
    assert problem.startswith(f"{source}:1: ")
    assert reason in problem


def test_type_checking_imports_are_left_out(tmp_path: Path) -> None:
    _tree(tmp_path, {
        "engine/common/a.py": (
            "from typing import TYPE_CHECKING\n"
            "if TYPE_CHECKING:\n"
            "    from engine.delivery.run import Run\n"
            "else:\n"
            "    from engine.social import plan\n"),
        "engine/delivery/run.py": "",
        "engine/social/plan.py": "",
    })
    [problem] = arch.check(tmp_path)
    assert "engine.common.a -> engine.social.plan" in problem


def test_a_new_engine_subpackage_must_be_given_a_floor(tmp_path: Path) -> None:
    _tree(tmp_path, {"engine/billing/invoices.py": ""})
    assert arch.check(tmp_path) == [
        "engine.billing: engine module outside every floor of ENGINE_LAYERS",
        "engine.billing.invoices: engine module outside every floor of ENGINE_LAYERS"]


def test_long_modules_are_named(tmp_path: Path) -> None:
    _tree(tmp_path, {"web/big.py": "x = 1\n" * 601, "web/fine.py": "x = 1\n" * 600})
    assert arch.long_modules(tmp_path) == ["web/big.py: 601 lines (limit 600)"]
