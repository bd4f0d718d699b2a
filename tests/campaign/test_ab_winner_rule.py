"""Issue 19: the A/B winner rule is validated like every other rule (unknown keys with a
suggestion, ranges, choices, file:line:column), and pydantic's pattern errors read as a
sentence naming the field and the expected format, in Indonesian or English."""

from __future__ import annotations

from engine.campaign.loader import check_text
from engine.common.i18n import using_lang

BASE = """\
version: 1
id: promo-ab
name: Promo A/B
type: promotional
schedule: {{start: 2026-12-01 09:00}}
audience: {{include: [{{consent: marketing}}]}}
offer: {{kind: discount, percent: 10, code: {code}, ends: 2026-12-31}}
channels:
  email:
    template: email/promotional.mjml
    subject: "Promo"
{variants}    winner: {winner}
"""
VARIANTS = '    variants: [{name: B, subject: "Promo B"}]\n'


def _check(winner: str, variants: str = VARIANTS, code: str = "AB10") -> list[str]:
    spec, errors = check_text(BASE.format(winner=winner, variants=variants, code=code),
                              "promo.yaml")
    assert (spec is None) == bool(errors)
    return [str(e) for e in errors]


def test_a_valid_rule_and_its_defaults() -> None:
    spec, errors = check_text(BASE.format(winner="{after_hours: 4}", variants=VARIANTS,
                                          code="AB10"), "promo.yaml")
    assert errors == [] and spec is not None and spec.email is not None
    rule = spec.email.winner
    assert rule is not None
    assert (rule.after_hours, rule.metric, rule.test_share, rule.if_not_significant) == (
        4, "click_rate", 20, "best")


def test_unknown_key_gets_a_suggestion_at_its_line() -> None:
    errors = _check("{after_hours: 4, test_shar: 20}")
    assert errors == ["promo.yaml:13:30: kunci 'test_shar' tidak dikenal, apakah maksud Anda "
                      "'test_share'?; yang diharapkan: after_hours, metric, test_share, "
                      "if_not_significant"]


def test_ranges_and_choices() -> None:
    errors = _check("{after_hours: 0, metric: clicks, test_share: 95}")
    assert errors == [
        "promo.yaml:13:27: harus paling sedikit 1, bukan 0",
        "promo.yaml:13:38: nilai 'clicks' tidak sah, apakah maksud Anda 'click_rate'?; "
        "yang diharapkan: click_rate, open_rate",
        "promo.yaml:13:58: harus paling banyak 90, bukan 95"]


def test_the_rule_needs_variants() -> None:
    errors = _check("{after_hours: 4}", variants="")
    assert errors == ["promo.yaml:12:5: aturan pemenang A/B (winner) perlu minimal satu "
                      "varian di channels.email.variants"]


def test_a_pattern_error_is_an_indonesian_sentence() -> None:
    errors = _check("{after_hours: 4}", code='"AB 10!"')
    assert errors == ["promo.yaml:7:44: kolom offer.code: nilai 'AB 10!' tidak sesuai format; "
                      "yang diharapkan: 2 sampai 40 karakter: huruf, angka, garis bawah (_) "
                      "atau tanda hubung (-), tanpa spasi"]
    assert "String should match" not in errors[0]
    with using_lang("en"):
        english = _check("{after_hours: 4}", code='"AB 10!"')
    assert "field offer.code: value 'AB 10!' does not match the format" in english[0]


def test_transactional_mail_has_no_test_group() -> None:
    text = """\
version: 1
id: struk-ab
name: Struk
type: transactional
schedule: {trigger: {event: order_confirmed}}
channels:
  email:
    template: email/order_confirmation.mjml
    subject: "Pesanan Anda"
    variants: [{name: B, subject: "Terima kasih"}]
    winner: {after_hours: 2}
"""
    _spec, errors = check_text(text, "struk.yaml")
    assert [str(e) for e in errors] == [
        "struk.yaml:11:5: email transaksional tidak diuji A/B: hapus winner (setiap pembeli "
        "harus menerima email transaksinya)"]
