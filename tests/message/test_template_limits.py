"""Template resource limits (issue 13, finding 4): hostile subjects fail at validate and
at send time, before they allocate; normal campaigns are untouched."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest

from engine.campaign.loader import CampaignValidationError, load_campaign
from engine.message import limits
from engine.message.render import compile_email, render_email
from engine.message.templating import (
    TemplateProblem,
    compile_string,
    jinja_env,
    render_checked,
    sample_context,
)

MAX_PEAK_BYTES = 5_000_000

PAYLOADS = {
    "format_width": "{{ '{:>200000000}'.format(1)|length }}",
    "format_precision": "{{ '{:.200000000f}'.format(1.5)|length }}",
    "nested_format": "{{ '{:{w}}'.format(1, w=10**9)|length }}",
    "format_map": "{{ '{v:>{w}}'.format_map({'v': 1, 'w': 200000000})|length }}",
    "percent_width": "{{ ('%0200000000d' % 1)|length }}",
    "percent_star": "{{ ('%*d' % (200000000, 1))|length }}",
    "format_filter": "{{ '%0200000000d'|format(1)|length }}",
    "indent": "{{ 'a\\nb'|indent(100000)|length }}",
    "lipsum_n": "{{ lipsum(100000, false, 1, 2)|length }}",
    "lipsum_words": "{{ lipsum(2, false, 20, 1000000)|length }}",
    "nested_repetition": "{{ ([['ab'] * 10000] * 1000)|join|length }}",
    "join_separator": "{{ range(1000)|join('x' * 50000)|length }}",
    "range": "{{ range(50000)|list|length }}",
    "concat_doubling": "{{ (('x' * 60000) ~ ('x' * 60000))|length }}",
    "plus_doubling": "{{ (('x' * 60000) + ('x' * 60000))|length }}",
    "tojson_indent": "{{ products|tojson(indent=1000000)|length }}",
}

LOOPS = "{% for i in range(100) %}{% for j in range(100) %}{% for k in range(100) %}" \
        "x{% endfor %}{% endfor %}{% endfor %}"
BIG_OUTPUT = "{% for i in range(10000) %}{{ 'x' * 1000 }}{% endfor %}"


def _peak(run: Callable[[], object]) -> tuple[int, BaseException | None]:
    """Peak traced allocation while ``run`` executes, and what it raised."""
    tracemalloc.start()
    raised: BaseException | None = None
    try:
        run()
    except Exception as exc:
        raised = exc
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak, raised


def _campaign(tmp_path: Path, subject: str) -> Path:
    path = tmp_path / "serangan.yaml"
    quoted = subject.replace("\\", "\\\\").replace('"', '\\"')
    path.write_text(
        "version: 1\nid: serangan\nname: Serangan\ntype: promotional\n"
        "schedule: {start: 2026-12-01 09:00}\n"
        "audience: {include: [{consent: marketing}]}\n"
        "offer: {kind: discount, percent: 15, code: TENUN15, ends: 2026-12-31}\n"
        "channels:\n  email:\n    template: email/promotional.mjml\n"
        f"    subject: \"{quoted}\"\n",
        encoding="utf-8",
    )
    return path


@pytest.mark.parametrize("payload", PAYLOADS.values(), ids=PAYLOADS.keys())
def test_payload_fails_validation_at_its_line(tmp_path: Path, payload: str) -> None:
    path = _campaign(tmp_path, payload)
    peak, raised = _peak(lambda: load_campaign(path))
    assert isinstance(raised, CampaignValidationError), raised
    [error] = raised.errors
    assert (error.line, error.column) == (11, 14)
    assert str(error).startswith(f"{path}:11:14: ")
    assert "melebihi batas" in error.message or "batasnya" in error.message
    assert peak < MAX_PEAK_BYTES


@pytest.mark.parametrize("payload", PAYLOADS.values(), ids=PAYLOADS.keys())
def test_payload_refused_at_render_in_bounded_memory(payload: str) -> None:
    template = compile_string(payload)
    peak, raised = _peak(lambda: render_checked(template, sample_context()))
    assert isinstance(raised, TemplateProblem), raised
    assert "batas" in raised.message
    assert peak < MAX_PEAK_BYTES


@pytest.mark.parametrize("payload", PAYLOADS.values(), ids=PAYLOADS.keys())
def test_send_time_render_email_refuses_the_subject(payload: str) -> None:
    compiled = compile_email("email/promotional.mjml", payload)
    peak, raised = _peak(lambda: render_email(compiled, sample_context()))
    assert isinstance(raised, TemplateProblem), raised
    assert raised.template == "subject" and "batas" in raised.message
    assert peak < MAX_PEAK_BYTES


@pytest.mark.parametrize("autoescape", [True, False])
def test_loop_iterations_are_capped_per_render(
    autoescape: bool, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The loop cap is under test, not the clock: tracemalloc makes 100,000 iterations
    # slow, and on a busy machine the 2 s render budget would fire first.
    monkeypatch.setattr(limits, "MAX_RENDER_SECONDS", 600.0)
    template = jinja_env(autoescape).from_string(LOOPS)
    peak, raised = _peak(lambda: render_checked(template, {}))
    assert isinstance(raised, TemplateProblem)
    assert f"{limits.MAX_LOOP_ITERATIONS} putaran" in raised.message
    assert peak < MAX_PEAK_BYTES


def test_output_bytes_are_capped_per_render() -> None:
    template = jinja_env(True).from_string(BIG_OUTPUT)
    peak, raised = _peak(lambda: render_checked(template, {}))
    assert isinstance(raised, TemplateProblem)
    assert f"{limits.MAX_OUTPUT_BYTES} byte" in raised.message
    assert peak < 3 * limits.MAX_OUTPUT_BYTES


def test_time_budget_per_render(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "MAX_RENDER_SECONDS", 0.0)
    template = jinja_env(False).from_string("{% for i in range(1000) %}{{ i }}{% endfor %}")
    with pytest.raises(TemplateProblem, match="batas waktu"):
        render_checked(template, {})


def test_set_doubling_in_a_template_is_refused() -> None:
    source = "{% set s = 'x' * 1000 %}" + "{% set s = s ~ s %}" * 30 + "{{ s|length }}"
    template = jinja_env(False).from_string(source)
    peak, raised = _peak(lambda: render_checked(template, {}))
    assert isinstance(raised, TemplateProblem) and "batasnya" in raised.message
    assert peak < MAX_PEAK_BYTES


def test_normal_text_still_renders() -> None:
    ctx = sample_context()
    source = ("{{ customer.first_name }}, diskon {{ offer.percent }}% - {{ '%05.1f' % 2.5 }}"
              " {{ '{:>6}'.format('a') }} {{ 'a\\nb'|indent(2) }} {{ range(3)|join(',') }}"
              " {{ lipsum(1, false, 3, 5)|length > 0 }}"
              " {% for p in products %}{{ loop.index }}{{ '' if loop.last else ',' }}{% endfor %}")
    assert render_checked(jinja_env(False).from_string(source), ctx) == \
        "Maria, diskon 15% - 002.5      a a\n  b 0,1,2 True 1,2,3"


def test_example_campaigns_still_validate() -> None:
    for path in sorted(Path("campaigns").glob("*.yaml")):
        load_campaign(path)
