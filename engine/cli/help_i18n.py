"""Typer's and Click's own texts (help, usage, panels, errors) in the CLI's language.

Why overrides and not a gettext domain: Typer 0.2x vendors its own Click, and that copy
has no gettext calls at all ("Show this message and exit.", "Usage: ", "Missing
argument ..." are plain literals or f-strings); only a few of Typer's own strings pass
through ``gettext``, and those are read once at import (the panel titles). So this
module hooks the few stable places every such text passes through, and translates at
the moment of printing, in the language chosen then (``--lang``, ``UMKM_LANG``):

* the help option's text (``Command.get_help_option``),
* the usage prefix (``HelpFormatter.write_usage``),
* Typer's ``_`` and its panel constants, refreshed before each help or error page,
* every exception's ``format_message`` (exact texts, then a few known sentence shapes).

The texts are catalog keys (``clihelp.*``); English is the original text unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import wraps
from typing import Any

from typer import core as typer_core
from typer import exceptions as typer_exceptions
from typer import rich_utils
from typer._click import core as click_core
from typer._click import exceptions as click_exceptions
from typer._click import formatting as click_formatting

from engine.common.i18n import get_lang, t

# Exact English texts -> catalog keys.
TEXTS: dict[str, str] = {
    "Show this message and exit.": "clihelp.show_help",
    "Usage: ": "clihelp.usage",
    "Arguments": "clihelp.arguments",
    "Options": "clihelp.options",
    "Commands": "clihelp.commands",
    "Error": "clihelp.error",
    "Aborted.": "clihelp.aborted",
    "Aborted!": "clihelp.aborted",
    "Missing command.": "clihelp.missing_command",
    "No such command {name!r}.": "clihelp.no_such_command",
    "required": "clihelp.required",
    "[required]": "clihelp.required_long",
    "default: {default}": "clihelp.default",
    "[default: {}]": "clihelp.default_long",
    "env var: {var}": "clihelp.env_var",
    "[env var: {}]": "clihelp.env_var_long",
    "(dynamic)": "clihelp.dynamic",
    "(deprecated) ": "clihelp.deprecated",
    "Try [blue]'{command_path} {help_option}'[/] for help.": "clihelp.try_help",
}
# Sentences built with f-strings inside the vendored Click: (shape, key); the named
# groups become the key's placeholders (an inner message is translated again).
SHAPES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"Missing argument (?P<name>.+?)\.(?: (?P<extra>.*))?"),
     "clihelp.missing_argument"),
    (re.compile(r"Missing option (?P<name>.+?)\.(?: (?P<extra>.*))?"), "clihelp.missing_option"),
    (re.compile(r"Missing parameter:? ?(?P<name>.*?)\.?"), "clihelp.missing_parameter"),
    (re.compile(r"No such option: (?P<name>\S+) \(Possible options: (?P<options>.+)\)"),
     "clihelp.no_such_option_hint"),
    (re.compile(r"No such option: (?P<name>\S+)"), "clihelp.no_such_option"),
    (re.compile(r"Invalid value for (?P<name>.+?): (?P<message>.+)", re.S), "clihelp.invalid_for"),
    (re.compile(r"Invalid value: (?P<message>.+)", re.S), "clihelp.invalid"),
    (re.compile(r"Got unexpected extra arguments? ?\(s\)? ?\((?P<args>.*)\)"),
     "clihelp.extra_arguments"),
    (re.compile(r"Value (?P<value>.+) is not a valid (?P<kind>.+)\."), "clihelp.not_valid"),
    (re.compile(r"Option (?P<name>.+) does not take a value\."), "clihelp.takes_no_value"),
    (re.compile(r"Option (?P<name>.+) requires (?P<count>an|\d+) arguments?\."),
     "clihelp.needs_value"),
    (re.compile(r"(?P<message>.+?)\.? Did you mean (?P<options>.+)\?", re.S),
     "clihelp.did_you_mean"),
    # Typer converts values with pydantic: its messages for the usual parameter types
    (re.compile(r"Input should be a valid integer.*"), "clihelp.input_int"),
    (re.compile(r"Input should be a valid (number|decimal).*"), "clihelp.input_number"),
    (re.compile(r"Input should be a valid boolean.*"), "clihelp.input_bool"),
    (re.compile(r"Input should be a valid (date|datetime).*"), "clihelp.input_date"),
    (re.compile(r"Input should be (?P<options>.+)"), "clihelp.input_choice"),
)
_PANEL_CONSTANTS = {
    "DEPRECATED_STRING": "(deprecated) ", "DEFAULT_STRING": "[default: {}]",
    "ENVVAR_STRING": "[env var: {}]", "REQUIRED_LONG_STRING": "[required]",
    "ARGUMENTS_PANEL_TITLE": "Arguments", "OPTIONS_PANEL_TITLE": "Options",
    "COMMANDS_PANEL_TITLE": "Commands", "ERRORS_PANEL_TITLE": "Error",
    "ABORTED_TEXT": "Aborted.",
    "RICH_HELP": "Try [blue]'{command_path} {help_option}'[/] for help.",
}


def translate(text: str) -> str:
    """One of Typer's/Click's texts in the current language (English: unchanged)."""
    if get_lang() == "en" or not isinstance(text, str):
        return text
    key = TEXTS.get(text)
    if key is not None:
        return t(key)
    for shape, shape_key in SHAPES:
        found = shape.fullmatch(text)
        if found:
            parts = {k: translate(v) if k == "message" else (v or "")
                     for k, v in found.groupdict().items()}
            return t(shape_key, **parts).strip()
    return text


def _refresh_panels() -> None:
    """Typer read its panel titles once at import: set them for the language now."""
    for name, english in _PANEL_CONSTANTS.items():
        setattr(rich_utils, name, translate(english))


def _refreshing(render: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(render)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        _refresh_panels()
        return render(*args, **kwargs)

    setattr(wrapper, "_umkm_i18n", True)  # noqa: B010  (marks the hook as installed)
    return wrapper


def _translated_message(format_message: Callable[[Any], str]) -> Callable[[Any], str]:
    @wraps(format_message)
    def wrapper(self: Any) -> str:
        return translate(format_message(self))

    return wrapper


def _help_option(original: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(original)
    def wrapper(self: Any, ctx: Any) -> Any:
        option = original(self, ctx)
        if option is not None:
            option.help = translate("Show this message and exit.")
        return option

    return wrapper


# Click's placeholders in the usage line ("umkm report [OPTIONS]") -> catalog keys.
USAGE_WORDS = {"[OPTIONS]": "clihelp.usage_options", "COMMAND": "clihelp.usage_command",
               "[ARGS]...": "clihelp.usage_args"}


def usage_args(args: str) -> str:
    """The usage line's placeholders in the current language (argument names stay)."""
    if get_lang() == "en":
        return args
    return " ".join(t(USAGE_WORDS[w]) if w in USAGE_WORDS else w for w in args.split(" "))


def _write_usage(original: Callable[..., None]) -> Callable[..., None]:
    @wraps(original)
    def wrapper(self: Any, prog: str, args: str = "", prefix: str | None = None) -> None:
        original(self, prog, usage_args(args),
                 translate("Usage: ") if prefix is None else prefix)

    return wrapper


def install() -> None:
    """Hook the texts once per process (idempotent: a second call changes nothing)."""
    if getattr(rich_utils.rich_format_help, "_umkm_i18n", False):
        return
    setattr(typer_core, "_", translate)  # noqa: B010  (their gettext alias)
    setattr(rich_utils, "_", translate)  # noqa: B010
    for name in ("rich_format_help", "rich_format_error", "rich_abort_error"):
        setattr(rich_utils, name, _refreshing(getattr(rich_utils, name)))
    for module in (typer_exceptions, click_exceptions):
        for cls in vars(module).values():
            if isinstance(cls, type) and "format_message" in cls.__dict__:
                setattr(cls, "format_message",  # noqa: B010
                        _translated_message(cls.__dict__["format_message"]))
    click_core.Command.get_help_option = _help_option(  # type: ignore[method-assign]
        click_core.Command.get_help_option)
    click_formatting.HelpFormatter.write_usage = _write_usage(  # type: ignore[method-assign]
        click_formatting.HelpFormatter.write_usage)
