"""Email templates: every type renders in Indonesian with product cards, footer and text part."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from engine.message.render import check_email_template, compile_email, render_email
from engine.message.templating import TEMPLATES_DIR, TemplateProblem, sample_context

MARKETING = ["promotional", "newsletter", "retention", "personalized"]
TRANSACTIONAL = ["order_confirmation", "order_shipped", "invoice"]
CAMPAIGN_TYPE = {"order_confirmation": "transactional", "order_shipped": "transactional",
                 "invoice": "transactional"}
LEFTOVER = re.compile(r"\{\{|\}\}|\{%|%\}|\{#|\[%|%\]|\[\[|\[#|</?mj-")
SUBJECT = "{{ customer.first_name }}, diskon {{ offer.percent }}% tenun ikat – TTS"


def _render(name: str, context: dict[str, Any] | None = None) -> Any:
    ctx = context or sample_context(CAMPAIGN_TYPE.get(name, name))
    return render_email(compile_email(f"email/{name}.mjml", SUBJECT), ctx)


def _visible_text(html: str) -> str:
    body = html.split("<body", 1)[1]
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body))


@pytest.mark.parametrize("name", MARKETING + TRANSACTIONAL)
def test_every_template_renders_completely(name: str) -> None:
    email = _render(name)
    assert email.subject == "Maria, diskon 15% tenun ikat – TTS"
    for part in (email.html, email.text):
        assert not LEFTOVER.search(part), LEFTOVER.search(part)
        assert "Dinas Perindustrian, Perdagangan, Koperasi dan UMKM" in part
        assert "0388-21000" in part
        assert "Rp " in part
    assert email.html.startswith("<!doctype html>") and 'lang="id"' in email.html
    assert "<title>Maria, diskon 15% tenun ikat – TTS</title>" in email.html
    assert 'name="viewport"' in email.html  # mobile
    assert len(email.text) > 300


@pytest.mark.parametrize("name", MARKETING)
def test_marketing_mail_has_product_cards_and_unsubscribe(name: str) -> None:
    email = _render(name)
    visible = _visible_text(email.html)
    for product, price in (("Selendang Tenun Ikat Amanuban", "Rp 350.000"),
                           ("Madu Hutan Mollo 500 ml", "Rp 120.000"),
                           ("Se'i Sapi Asap 250 g", "Rp 95.000")):
        assert product in visible or product.replace("'", "&#39;") in visible
        assert price in visible and price in email.text
    assert 'src="https://umkm.ttskab.go.id/media/produk-1.jpg"' in email.html
    assert "oleh Tenun Ikat Ina Lopo" in visible and "oleh Tenun Ikat Ina Lopo" in email.text
    assert 'href="https://umkm.ttskab.go.id/u/contoh">Berhenti berlangganan</a>' in email.html
    assert "Atur preferensi email" in visible
    assert "Berhenti berlangganan: https://umkm.ttskab.go.id/u/contoh" in email.text


@pytest.mark.parametrize("name", TRANSACTIONAL)
def test_transactional_mail_shows_order_lines_and_contact_not_unsubscribe(name: str) -> None:
    email = _render(name)
    visible = _visible_text(email.html)
    for part in (visible, email.text):
        assert "INV-2026-0001" in part
        assert "Madu Hutan Mollo 500 ml" in part
        assert "Rp 240.000" in part and "Rp 590.000" in part  # subtotal and total
        assert "Tenun Ikat Ina Lopo" in part and "wa.me/6281234567890" in email.html + part
        assert "Berhenti berlangganan" not in part
    assert "2 × Rp 120.000" in visible.replace("&times;", "×")
    assert "2 x Rp 120.000 = Rp 240.000" in email.text


def test_order_dates_and_shipping_details() -> None:
    confirmation = _render("order_confirmation")
    assert "Selasa, 1 Desember 2026 pukul 09.00 WITA" in confirmation.text
    shipped = _render("order_shipped")
    assert "Kurir: JNE" in shipped.text and "Nomor resi: JNE1234567890" in shipped.text
    assert "JNE1234567890" in _visible_text(shipped.html)
    invoice = _render("invoice")
    assert "Nomor invoice: INV-2026-0001" in invoice.text
    assert "Tanggal invoice: Selasa, 1 Desember 2026" in invoice.text


def test_newsletter_lists_articles_and_training_agenda() -> None:
    email = _render("newsletter")
    for part in (_visible_text(email.html), email.text):
        assert "Cara memotret produk dengan ponsel" in part
        assert "Pelatihan pemasaran digital" in part
        assert "Jumat, 11 Desember 2026, pukul 09.00 WITA" in part
        assert "Aula Dinas, SoE" in part
        assert "Pasal 8" in part


def test_retention_mentions_days_inactive() -> None:
    context = sample_context("retention")
    context["days_inactive"] = 120
    email = _render("retention", context)
    assert "Sudah 120 hari sejak belanja terakhir" in email.text
    assert "Sudah 120 hari sejak belanja terakhir" in _visible_text(email.html)


@pytest.mark.parametrize(
    ("kind", "html_expected", "text_expected"),
    [
        ("discount", "TENUN15", "Berlaku sampai Kamis, 31 Desember 2026"),
        ("new_product", "Ada produk baru", "Ada produk baru"),
        ("bundle", "Rp 450.000", "(harga satuan Rp 565.000)"),
        (None, "Produk pilihan UMKM Timor Tengah Selatan",
         "Produk pilihan UMKM Timor Tengah Selatan"),
    ],
)
def test_promotional_offer_kinds(
    kind: str | None, html_expected: str, text_expected: str
) -> None:
    context = sample_context("promotional")
    context["offer"] = None if kind is None else {**context["offer"], "kind": kind}
    email = render_email(compile_email("promotional", "Promo"), context)
    assert html_expected in _visible_text(email.html)
    assert text_expected in email.text
    assert not LEFTOVER.search(email.html + email.text)
    if kind in ("new_product", None):
        assert "TENUN15" not in email.text + email.html


def test_personal_values_are_escaped_in_html_only() -> None:
    context = sample_context("personalized")
    context["customer"] = {**context["customer"], "first_name": "<b>Ana</b> & Co"}
    email = _render("personalized", context)
    assert "&lt;b&gt;Ana&lt;/b&gt; &amp; Co" in email.html and "<b>Ana</b>" not in email.html
    assert "Pilihan untuk <b>Ana</b> & Co" in email.text


def test_subject_is_one_line_whatever_the_data() -> None:
    context = sample_context()
    context["customer"] = {**context["customer"], "first_name": "Maria\r\nBcc: x@y.id"}
    email = _render("promotional", context)
    assert "\n" not in email.subject and "\r" not in email.subject


def test_compiled_once_per_template_and_variant() -> None:
    first = compile_email("email/promotional.mjml", "A {{ customer.first_name }}")
    assert compile_email("promotional", "A {{ customer.first_name }}") is first
    variant = compile_email("email/promotional.mjml", "B {{ customer.first_name }}")
    assert variant is not first and variant.html is not first.html


def test_preheader_expression_is_rendered() -> None:
    compiled = compile_email("promotional", "S", preheader="Khusus {{ customer.first_name }}")
    html = render_email(compiled, sample_context()).html
    assert "Khusus Maria" in html
    default = render_email(compile_email("promotional", "S"), sample_context()).html
    assert "Diskon Akhir Tahun" in default.split("<body", 1)[1][:600]


def test_check_accepts_every_template_with_the_sample_context() -> None:
    for name in MARKETING + TRANSACTIONAL:
        check_email_template(f"email/{name}.mjml", sample_context(CAMPAIGN_TYPE.get(name, name)))


def _line_of(relative: str, needle: str) -> int:
    lines = (TEMPLATES_DIR / relative).read_text().splitlines()
    return next(i for i, line in enumerate(lines, start=1) if needle in line)


def test_undefined_variable_points_at_the_template_line() -> None:
    context = sample_context()
    del context["customer"]
    with pytest.raises(TemplateProblem) as caught:
        check_email_template("email/promotional.mjml", context)
    problem = caught.value
    assert problem.template == "email/promotional.mjml"
    assert problem.lineno == _line_of("email/promotional.mjml", "{{ customer.first_name }}")
    assert "customer" in problem.message


def test_undefined_variable_in_the_layout_is_located_there() -> None:
    context = sample_context()
    del context["unsubscribe_url"]
    with pytest.raises(TemplateProblem) as caught:
        check_email_template("promotional", context)
    assert caught.value.template == "email/layouts/base.mjml"
    assert caught.value.lineno == _line_of("email/layouts/base.mjml", "{{ unsubscribe_url }}")


def test_missing_order_fails_transactional_templates_at_validate_time() -> None:
    context = sample_context("transactional")
    context["order"] = {**context["order"]}
    del context["order"]["courier"]
    with pytest.raises(TemplateProblem) as caught:
        check_email_template("order_shipped", context)
    assert caught.value.template == "email/order_shipped.mjml"
    assert caught.value.lineno is not None


def test_unknown_template_and_bad_subject_are_template_problems() -> None:
    with pytest.raises(TemplateProblem, match="tidak ditemukan"):
        compile_email("email/tidak-ada.mjml", "x")
    with pytest.raises(TemplateProblem) as caught:
        compile_email("promotional", "{{ customer.first_name ")
    assert caught.value.template == "subject"


def test_templates_exist_for_every_email_type() -> None:
    email_dir = Path(TEMPLATES_DIR) / "email"
    for name in MARKETING + TRANSACTIONAL:
        assert (email_dir / f"{name}.mjml").is_file()
        assert (email_dir / f"{name}.txt").is_file()


@pytest.mark.parametrize("name", ["promotional", "order_confirmation"])
def test_layout_text_follows_the_installation_language(name: str) -> None:
    """UMKM_LANG=en: the shared layout (header, footer, unsubscribe, product cards, order
    table) speaks English; the campaign's own words stay as written."""
    ctx = sample_context(CAMPAIGN_TYPE.get(name, name))
    english = render_email(compile_email(f"email/{name}.mjml", SUBJECT, lang="en"), ctx)
    indonesian = _render(name)
    visible = _visible_text(english.html)
    for part in (visible, english.text):
        assert "Timor Tengah Selatan Regency" in part
        assert "Regent Regulation No. 17 of 2025" in part
        assert "Peraturan Bupati" not in part and "Telp." not in part
    assert 'lang="en"' in english.html and english.subject == indonesian.subject
    if name == "promotional":
        assert ">Unsubscribe</a>" in english.html and "Email preferences" in visible
        assert "Unsubscribe: https://umkm.ttskab.go.id/u/contoh" in english.text
        assert "View product" in visible and "by Tenun Ikat Ina Lopo" in english.text
    else:
        assert "Product" in visible and "Questions about it? Contact" in english.text
        assert "Unsubscribe" not in visible
    assert "Berhenti berlangganan" in indonesian.html or name != "promotional"


# --- issue 22, second round: shortcuts past the sandbox give the sandbox's answers ---------

def _runtime(source: str, autoescape: bool = True) -> Any:
    from engine.message.render import _runtime_template

    return _runtime_template("test", source, "id", autoescape=autoescape)


def test_dict_get_and_loop_counters_render_as_through_the_sandbox() -> None:
    from engine.message.templating import jinja_env, render_checked

    source = ("{% for p in products %}{{ p.get('name') }}|{{ p.get('none', 'd') }}|"
              "{{ loop.index }}{{ loop.first }}{{ loop.last }}"
              "{{ loop.length }}{{ loop.revindex }};{% endfor %}")
    values = {"products": [{"name": "Madu <Mollo>"}, {"name": "Se'i"}]}
    fast = render_checked(_runtime(source), values)
    plain = render_checked(jinja_env(True).from_string(source), values)
    assert fast == plain == "Madu &lt;Mollo&gt;|d|1TrueFalse22;Se&#39;i|d|2FalseTrue21;"
    assert render_checked(_runtime("{{ q.get }}"), {"q": {"get": "a key"}}) == "a key"


@pytest.mark.parametrize("expression", ["p.pop('name')", "p.update(a=1)", "p.setdefault('x')",
                                        "p.get('name', default=1)", "p.get.__self__",
                                        "loop.__class__", "loop.cycle.__globals__"])
def test_what_the_sandbox_refuses_stays_refused(expression: str) -> None:
    from engine.message.templating import render_checked

    template = _runtime("{% for p in products %}{{ " + expression + " }}{% endfor %}")
    with pytest.raises(TemplateProblem):
        render_checked(template, {"products": [{"name": "x"}]})


@pytest.mark.parametrize("value", ["<b>&'\"", "Maria", "", "x" * 300, 15, None, 1.5])
def test_html_values_escape_as_markupsafe_does(value: object) -> None:
    from markupsafe import Markup, escape

    from engine.message.render import _escape_repeating

    for _ in range(2):  # the first time and from the table
        escaped = _escape_repeating(value)
        assert type(escaped) is Markup and escaped == escape(value)
    tracked = Markup("https://x/t/c/a&amp;b")
    assert _escape_repeating(tracked) == escape(tracked) == tracked


def test_compiled_html_escapes_through_the_table() -> None:
    from engine.message.render import _escape_repeating
    from engine.message.templating import render_checked

    html = compile_email("email/promotional.mjml", SUBJECT).html
    assert html.root_render_func.__globals__["escape"] is _escape_repeating
    text = _runtime("{{ a }}", autoescape=False)
    assert "_escape_repeating" not in repr(text.root_render_func.__globals__.get("escape"))
    ctx = {**sample_context(), "customer": {**sample_context()["customer"],
                                            "first_name": "<i>Maria</i>"}}
    assert "&lt;i&gt;Maria&lt;/i&gt;" in render_email(compile_email("promotional", SUBJECT),
                                                       ctx).html
    assert render_checked(_runtime("{{ range(3)|join(',') }}{{ x }}"), {"x": 1}) == "0,1,21"
