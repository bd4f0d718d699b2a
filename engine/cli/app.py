"""The Typer application object and the helpers every command module shares.

Any :class:`engine.common.errors.EngineError` a command lets escape is printed by ONE
handler (:class:`EngineErrorGroup`) exactly as :func:`fail` prints an error, and exits
with the same code, so commands need not translate engine refusals themselves.
"""

from __future__ import annotations

from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

from engine.cli import help_i18n
from engine.common.errors import EngineError
from engine.common.i18n import set_lang, t

help_i18n.install()  # Typer's own help and error texts in the CLI's language


class EngineErrorGroup(TyperGroup):
    """The root command group; its ``invoke`` wraps every subcommand's run."""

    def invoke(self, ctx: Any) -> Any:  # Any: the context class is typer's vendored click
        try:
            return super().invoke(ctx)
        except EngineError as exc:
            fail(escape(str(exc)))


app = typer.Typer(
    cls=EngineErrorGroup,
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
    add_completion=False,
    help=t("cli.help", lang="id"),
)
console = Console()
err_console = Console(stderr=True)


@app.callback()
def root(
    lang: str = typer.Option(None, "--lang", help=t("cli.lang_help", lang="id")),
) -> None:
    """Set the output language before any command runs."""
    if lang is not None and lang not in ("id", "en"):
        err_console.print(t("cli.bad_lang", lang=lang))
        raise typer.Exit(2)
    set_lang(lang)


def fail(message: str, code: int = 1) -> NoReturn:
    """Print a clear error (never a traceback) and exit with ``code``."""
    err_console.print(f"[bold red]{t('cli.error', message=message)}[/]", highlight=False,
                      soft_wrap=True)
    raise typer.Exit(code)


def sub(name: str, help_id: str) -> typer.Typer:
    """Create and mount a command group such as ``umkm business``."""
    group = typer.Typer(no_args_is_help=True, help=help_id, rich_markup_mode="rich")
    app.add_typer(group, name=name)
    return group
