"""Issue 13: ``campaign validate`` refuses a limit bomb in a branch the sample skips.

The sample context never has a customer named Zed, so a test render alone would pass
these; the static walk of the parsed template (:mod:`engine.campaign.template_static`)
refuses the literal wherever it sits, saying the field, the line and the limit.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.campaign.template_static import static_problems
from engine.cli import _load_commands
from engine.cli.app import app
from engine.message.templating import compile_string, render_checked, sample_context

HIDDEN = {
    "format_width": "{{ '{:>200000000}'.format(1) }}",
    "percent_width": "{{ '%0200000000d' % 1 }}",
    "indent": "{{ 'a\\nb'|indent(100000) }}",
    "lipsum": "{{ lipsum(100000) }}",
    "repetition": "{{ 'x' * 200000000 }}",
}
runner = CliRunner()


def _wrapped(payload: str) -> str:
    return "{% if customer.first_name == 'Zed' %}" + payload + "{% endif %}Promo tenun"


def _campaign(tmp_path: Path, subject: str) -> Path:
    path = tmp_path / "tersembunyi.yaml"
    quoted = subject.replace("\\", "\\\\").replace('"', '\\"')
    path.write_text(
        "version: 1\nid: tersembunyi\nname: Tersembunyi\ntype: promotional\n"
        "schedule: {start: 2026-12-01 09:00}\n"
        "audience: {include: [{consent: marketing}]}\n"
        "offer: {kind: discount, percent: 15, code: TENUN15, ends: 2026-12-31}\n"
        "channels:\n  email:\n    template: email/promotional.mjml\n"
        f"    subject: \"{quoted}\"\n",
        encoding="utf-8",
    )
    return path


@pytest.mark.parametrize("payload", HIDDEN.values(), ids=HIDDEN.keys())
def test_the_sample_render_alone_would_not_see_it(payload: str) -> None:
    assert render_checked(compile_string(_wrapped(payload)), sample_context()) == "Promo tenun"


@pytest.mark.parametrize("payload", HIDDEN.values(), ids=HIDDEN.keys())
def test_validate_refuses_a_bomb_in_an_unreached_branch(tmp_path: Path, payload: str) -> None:
    _load_commands()
    path = _campaign(tmp_path, _wrapped(payload))
    result = runner.invoke(app, ["campaign", "validate", str(path)],
                           env={**os.environ, "COLUMNS": "400"})
    assert result.exit_code != 0, result.output
    output = " ".join(result.output.split())
    assert f"{path}:11:14:" in output and "1 galat" in output, output
    assert "email.subject" in output and "baris 1" in output, output
    assert "batas" in output and "diperiksa di setiap cabang" in output, output


def test_the_line_of_a_multiline_template_is_reported() -> None:
    source = "Halo\n{% if x %}\n\n{{ 'a' * 10**0 }}{{ '{:>5000}'.format(1) }}\n{% endif %}"
    [problem] = static_problems(source)
    assert problem.lineno == 4 and "5000" in problem.message


def test_ordinary_literals_are_left_alone() -> None:
    source = "{{ '{:>10}'.format(1) }}{{ '%05d' % 3 }}{{ x|indent(4) }}{{ lipsum(2) }}" \
             "{{ '-' * 40 }}"
    assert static_problems(source) == []
