"""The one Jinja environment for campaign text: sandboxed, strict, with Indonesian filters.

Why sandboxed: subjects and templates come from YAML files written by staff; the
sandbox keeps them away from Python internals (``__class__``, ``mro`` ...).
Why StrictUndefined: a misspelt variable must fail at ``campaign validate`` time, not
halfway through a send.

The *render context* every email template receives (the contract between the engine
and ``templates/``)::

    customer   {first_name, name, email, kecamatan}
    campaign   {id, name, type}
    products   [{id, name, price, description, image_url, url, category, marketplaces:
                 [{label, url}], business: {id, name, kecamatan, whatsapp}}]  # featured
    offer      {kind, percent, code, ends, title, bundle_price}  or None
    order      {ref, status, ordered_at, items:[{name, quantity, unit_price, subtotal}],
                total, courier, tracking_number, business:{name, whatsapp}}  or None
    articles   [{title, summary, url}]         trainings [{title, date, place, url}]
    days_inactive, unsubscribe_url, preferences_url, dinas {name, address, phone, email},
    channel, lang
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache, update_wrapper
from pathlib import Path
from types import BuiltinMethodType, MethodType
from typing import Any
from weakref import WeakKeyDictionary

from jinja2 import FileSystemLoader, StrictUndefined, Template, nodes
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment
from markupsafe import Markup

from engine.common import formatting
from engine.common.i18n import t
from engine.message import guarded_filters, limits

TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "templates"

DINAS = {
    "name": "Dinas Perindustrian, Perdagangan, Koperasi dan UMKM Kabupaten Timor Tengah Selatan",
    "short_name": "Dinas Koperasi & UMKM TTS",
    "address": "Jl. Gajah Mada, SoE, Timor Tengah Selatan, NTT",
    "phone": "0388-21000",
    "email": "pemasaran@umkm.ttskab.go.id",
}


class TemplateProblem(Exception):
    """A template or expression that cannot compile or render; carries its location."""

    def __init__(self, message: str, template: str | None = None, lineno: int | None = None):
        super().__init__(message)
        self.message = message
        self.template = template
        self.lineno = lineno


MAX_POWER = 1_000
MAX_SEQUENCE = limits.MAX_SEQUENCE
MAX_INT_BITS = 4_096


class _BoundedSandbox(ImmutableSandboxedEnvironment):
    """The sandbox plus size limits: ``"a" * 10**9``, ``9**9**9``, ``'%0200000000d' % 1``
    or ``'{:>200000000}'.format(1)`` in a subject must fail fast at validate time instead
    of eating the worker's memory or CPU (see :mod:`engine.message.limits`)."""

    intercepted_binops = frozenset(["*", "**", "%", "+"])

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        limits.check_time()
        if operator == "**":
            if isinstance(right, int | float) and abs(right) > MAX_POWER:
                raise SecurityError(f"exponent {right} > {MAX_POWER}")
            if isinstance(left, int) and isinstance(right, int) and right > 0 and \
                    abs(left).bit_length() * right > MAX_INT_BITS:
                raise SecurityError(f"a number of more than {MAX_INT_BITS} bits")
            return left**right
        if operator == "%":
            if isinstance(left, str):
                limits.check_percent_format(left, right)
            return left % right
        if operator == "+":
            limits.check_add(left, right)
            return left + right
        limits.check_repeat(left, right)
        limits.check_repeat(right, left)
        return left * right

    def call(self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        """String methods that can build huge values are checked before they run."""
        limits.check_time()
        owner = getattr(__obj, "__self__", None)
        name = getattr(__obj, "__name__", "")
        if isinstance(owner, str) and name == "join":
            args = guarded_filters.check_str_join(owner, args)
        elif isinstance(owner, str) and name in _SIZED_STR_METHODS:
            _check_str_call(owner, name, args)
        return super().call(__context, __obj, *args, **kwargs)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        """Jinja's ``str.format``/``format_map`` wrapper with a width-checking formatter."""
        if not isinstance(value, MethodType | BuiltinMethodType) or \
                value.__name__ not in ("format", "format_map"):
            return None
        f_self: Any = value.__self__
        if not isinstance(f_self, str):
            return None
        str_type: type[str] = type(f_self)
        is_map = value.__name__ == "format_map"
        formatter: guarded_filters.BoundedFormatter = (
            guarded_filters.BoundedEscapeFormatter(self, escape=f_self.escape)
            if isinstance(f_self, Markup) else guarded_filters.BoundedFormatter(self))

        def wrapper(*args: Any, **kwargs: Any) -> str:
            if is_map:
                if kwargs or len(args) != 1:
                    raise TypeError("format_map() takes exactly one argument")
                kwargs, args = args[0], ()
            return str_type(formatter.vformat(f_self, args, kwargs))

        return update_wrapper(wrapper, value)

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        """Every parsed template gets its loops and ``~`` routed through the guards."""
        tree = super()._parse(source, name, filename)
        guarded = guarded_filters.LimitGuards().visit(tree)
        assert isinstance(guarded, nodes.Template)
        return guarded


_SIZED_STR_METHODS = frozenset({"center", "ljust", "rjust", "zfill", "expandtabs", "replace"})


def _check_str_call(text: str, name: str, args: tuple[Any, ...]) -> None:
    if name == "replace" and len(args) >= 2:
        _check_replace(text, str(args[0]), str(args[1]))
    elif name == "expandtabs":
        size = args[0] if args and isinstance(args[0], int) else 8
        if text.count("\t") * size > MAX_SEQUENCE:
            raise SecurityError("expandtabs result too large")
    elif args and isinstance(args[0], int) and args[0] > MAX_SEQUENCE:
        raise SecurityError(f"{name}({args[0]}) > {MAX_SEQUENCE}")


def _check_replace(text: str, old: str, new: str) -> None:
    growth = len(new) - len(old)
    occurrences = text.count(old) if old else len(text) + 1
    if growth > 0 and len(text) + occurrences * growth > MAX_SEQUENCE:
        raise SecurityError("replace result too large")


def _bounded_replace(eval_ctx: Any, text: Any, old: str, new: str, count: int | None = None
                     ) -> Any:
    """Jinja's ``replace`` filter with the same size check as the str method."""
    from jinja2.filters import do_replace

    if isinstance(text, str):
        _check_replace(text, str(old), str(new))
    return do_replace(eval_ctx, text, old, new, count)


def _bounded_center(value: str, width: int = 80) -> str:
    if width > MAX_SEQUENCE:
        raise SecurityError(f"center({width}) > {MAX_SEQUENCE}")
    return str(value).center(width)


# Campaign expressions (subject, preheader, UTM values) are one-liners: output and
# conditions only. Loops, assignments, macros and includes have no place there and are
# what an attacker needs to grow a value without bound (``{% set s = s ~ s %}``).
_FORBIDDEN_IN_EXPRESSIONS = ("For", "Assign", "AssignBlock", "Macro", "CallBlock",
                             "FilterBlock", "With", "Block", "Extends", "Include", "Import",
                             "FromImport", "Scope", "OverlayScope", "ScopedEvalContextModifier")


def _build_env(autoescape: bool) -> ImmutableSandboxedEnvironment:
    env = _BoundedSandbox(
        loader=FileSystemLoader(str(TEMPLATES_DIR)),
        undefined=StrictUndefined,
        autoescape=autoescape,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    from jinja2 import pass_eval_context

    env.filters["replace"] = pass_eval_context(_bounded_replace)
    env.filters["center"] = _bounded_center
    env.filters.update(guarded_filters.FILTERS)
    env.globals.update(guarded_filters.GLOBALS)
    env.filters["rupiah"] = formatting.rupiah
    env.filters["tanggal"] = formatting.tanggal
    env.filters["tanggal_pendek"] = formatting.tanggal_pendek
    env.filters["jam"] = formatting.jam
    return env


@lru_cache(maxsize=2)
def jinja_env(autoescape: bool = True) -> ImmutableSandboxedEnvironment:
    """HTML templates escape by default; subjects and plain text use ``autoescape=False``."""
    return _build_env(autoescape)


def compile_string(source: str, autoescape: bool = False) -> Template:
    """Compile a subject or caption expression; raises :class:`TemplateProblem`."""
    from jinja2 import TemplateSyntaxError

    env = jinja_env(autoescape)
    try:
        tree = env.parse(source)
    except TemplateSyntaxError as exc:
        raise TemplateProblem(exc.message or str(exc), lineno=exc.lineno) from exc
    for node_type in _FORBIDDEN_IN_EXPRESSIONS:
        found = next(tree.find_all(getattr(nodes, node_type)), None)
        if found is not None:
            raise TemplateProblem(t("tpl.statement", detail=node_type.lower()),
                                  lineno=found.lineno)
    return env.from_string(tree)


def render_checked(template: Template, context: dict[str, Any], name: str | None = None) -> str:
    """Render, turning undefined variables and sandbox violations into TemplateProblem."""
    return "".join(render_checked_parts(template, context, name))


def render_checked_parts(template: Template, context: dict[str, Any],
                         name: str | None = None) -> list[str]:
    """:func:`render_checked` as the output chunks of the template (static text of the
    template comes as the same string objects every time, which the MIME layer's cache
    recognises)."""
    from jinja2 import TemplateError, UndefinedError

    try:
        with limits.render_budget():
            return _render_bounded(template, context)
    except UndefinedError as exc:
        raise TemplateProblem(t("tpl.undefined", detail=exc.message), template=name) from exc
    except limits.TemplateLimit as exc:
        raise TemplateProblem(t("tpl.too_big", detail=exc), template=name) from exc
    except SecurityError as exc:
        raise TemplateProblem(t("tpl.forbidden", detail=exc), template=name) from exc
    except (MemoryError, OverflowError, RecursionError) as exc:
        raise TemplateProblem(t("tpl.too_big", detail=type(exc).__name__), template=name) from exc
    except (TemplateError, TypeError, ValueError, LookupError, AttributeError,
            ArithmeticError) as exc:
        raise TemplateProblem(t("tpl.error", detail=f"{type(exc).__name__}: {exc}"),
                              template=name) from exc


_FLAT_GLOBALS: WeakKeyDictionary[Template, dict[str, Any]] = WeakKeyDictionary()


def _new_context(template: Template, context: dict[str, Any]) -> Context:
    """``template.new_context(context)`` without walking a ``ChainMap`` per render.

    Why: Jinja keeps a template's globals as ``ChainMap(template globals, environment
    globals)`` and copies it key by key (in Python) twice per render, ~5 µs; an email
    renders four templates per recipient.  Both maps are filled when the environment
    and the template are built (:func:`jinja_env`, ``from_string``) and never changed
    after, so the flat copy is taken once per template.  The context is the same: the
    globals first, the recipient's variables over them.
    """
    flat = _FLAT_GLOBALS.get(template)
    if flat is None:
        flat = _FLAT_GLOBALS[template] = dict(template.globals)
    env = template.environment
    return env.context_class(env, {**flat, **context}, template.name, template.blocks,
                             globals=flat)


def _render_bounded(template: Template, context: dict[str, Any]) -> list[str]:
    """``template.render`` with the output counted as it comes (MAX_OUTPUT_BYTES)."""
    ctx = _new_context(template, context)
    try:
        return limits.bounded_parts(template.root_render_func(ctx))
    except Exception:
        template.environment.handle_exception()


def template_exists(name: str) -> bool:
    path = (TEMPLATES_DIR / name).resolve()
    return path.is_file() and TEMPLATES_DIR in path.parents


def sample_context(campaign_type: str = "promotional", lang: str = "id") -> dict[str, Any]:
    """A realistic recipient for validate/preview: every key of the render contract."""
    now = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)
    business = {"id": 1, "name": "Tenun Ikat Ina Lopo", "kecamatan": "Amanuban Tengah",
                "whatsapp": "6281234567890"}
    products = [
        {"id": i + 1, "name": name, "price": price, "description": desc,
         "image_url": f"https://umkm.ttskab.go.id/media/produk-{i + 1}.jpg",
         "url": f"https://umkm.ttskab.go.id/produk/{i + 1}", "category": cat,
         "marketplaces": [{"label": "Shopee", "url": "https://shopee.co.id/ina-lopo"}]
         if i == 0 else [], "business": business}
        for i, (name, price, desc, cat) in enumerate([
            ("Selendang Tenun Ikat Amanuban", 350000, "Tenun ikat motif Amanuban, pewarna alami.",
             "kerajinan_tangan"),
            ("Madu Hutan Mollo 500 ml", 120000, "Madu hutan murni dari Mollo Utara.",
             "makanan_olahan"),
            ("Se'i Sapi Asap 250 g", 95000, "Daging se'i asap kayu kesambi.", "makanan_olahan"),
        ])
    ]
    order_items = [
        {"name": "Selendang Tenun Ikat Amanuban", "quantity": 1, "unit_price": 350000,
         "subtotal": 350000},
        {"name": "Madu Hutan Mollo 500 ml", "quantity": 2, "unit_price": 120000,
         "subtotal": 240000},
    ]
    return {
        "customer": {"first_name": "Maria", "name": "Maria Tefa", "email": "maria@example.id",
                     "kecamatan": "Kota Soe"},
        "campaign": {"id": "contoh", "name": "Contoh Kampanye", "type": campaign_type},
        "products": products,
        "offer": {"kind": "discount", "percent": 15, "code": "TENUN15",
                  "ends": date(2026, 12, 31), "title": "Diskon Akhir Tahun",
                  "bundle_price": 450000},
        "order": {"ref": "INV-2026-0001", "status": "confirmed", "ordered_at": now,
                  "items": order_items, "total": 590000, "courier": "JNE",
                  "tracking_number": "JNE1234567890", "business": business},
        "articles": [{"title": "Cara memotret produk dengan ponsel",
                      "summary": "Lima langkah foto produk yang menjual.",
                      "url": "https://umkm.ttskab.go.id/edukasi/foto-produk"}],
        "trainings": [{"title": "Pelatihan pemasaran digital", "date": now + timedelta(days=10),
                       "place": "Aula Dinas, SoE", "url": "https://umkm.ttskab.go.id/pelatihan"}],
        "days_inactive": 90,
        "unsubscribe_url": "https://umkm.ttskab.go.id/u/contoh",
        "preferences_url": "https://umkm.ttskab.go.id/u/contoh",
        "dinas": DINAS,
        "channel": "email",
        "lang": lang,
    }
