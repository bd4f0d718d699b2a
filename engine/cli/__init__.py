"""``umkm``: the command line of the engine (Typer + Rich, Bahasa Indonesia by default).

Each command group lives in its own module and attaches itself to :data:`app` on import.
"""

from __future__ import annotations

import importlib
import sys

from engine.cli.app import app, err_console

# Modules that add commands to ``app``; order is the order of ``umkm --help``.
COMMAND_MODULES = (
    "engine.cli.setup",
    "engine.cli.business",
    "engine.cli.imports",
    "engine.cli.campaign",
    "engine.cli.campaign_ops",
    "engine.cli.campaign_sync",
    "engine.cli.ab_report",
    "engine.cli.accounts",
    "engine.cli.demo",
    "engine.cli.report",
    "engine.cli.plan",
    "engine.cli.bounces",
    "engine.cli.apikeys",
    "engine.cli.users",
    "engine.cli.programmes",
    "engine.cli.agreements",
    "engine.cli.customers",
    "engine.cli.deliverability",
    "engine.cli.dmarc",
    "engine.cli.tracking",
    "engine.cli.serve",
)


def _load_commands() -> None:
    for name in COMMAND_MODULES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise


def main() -> None:
    _load_commands()
    try:
        app()
    except KeyboardInterrupt:
        err_console.print("Dibatalkan.")
        sys.exit(130)


_load_commands()
