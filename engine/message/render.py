"""Email rendering: MJML compiled once per (template, variant), Jinja per recipient.

Why two Jinja passes: MJML -> HTML costs far more than a Jinja render, and a campaign
sends one design to thousands of people.  So a template is expanded and compiled once:

1. *compile pass* (delimiters ``[% %]``, ``[[ ]]``, ``[# #]``): layout inheritance
   (``templates/email/layouts/base.mjml``) and shared components, producing MJML that
   still contains the per-recipient Jinja (``{{ }}``, ``{% %}``);
2. MJML -> HTML with mjml-python (MRML);
3. the resulting HTML is compiled as a Jinja template and rendered per recipient in the
   sandboxed, strict environment of :mod:`engine.message.templating`.

Runtime loops and conditions around MJML elements are wrapped in ``<mj-raw>`` so MRML
leaves them where they are.  The plain-text part is a sibling ``.txt`` Jinja template.

Links in templates go through ``{{ track(url, product=p) }}`` and the open pixel through
``{{ open_pixel() }}``; see :mod:`engine.engagement.tracking` for the trackers.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache, partial
from pathlib import Path
from types import BuiltinMethodType, FunctionType, TracebackType
from typing import Any, cast

from jinja2 import (
    Environment,
    FileSystemLoader,
    StrictUndefined,
    Template,
    TemplateNotFound,
    TemplateSyntaxError,
    UndefinedError,
    nodes,
)
from jinja2.runtime import LoopContext
from jinja2.sandbox import ImmutableSandboxedEnvironment
from markupsafe import Markup, escape
from mjml import mjml2html

from engine.common import formatting
from engine.common.i18n import install_jinja, using_lang
from engine.engagement.tracking import PreviewTracker, Tracker
from engine.message.templating import (
    DINAS,
    TEMPLATES_DIR,
    TemplateProblem,
    jinja_env,
    render_checked,
    render_checked_parts,
)

__all__ = [
    "CompiledEmail",
    "EngineFunction",
    "RenderedEmail",
    "check_email_template",
    "compile_email",
    "normalize_template_name",
    "render_email",
    "runtime_env",
]

_COMPILE_DELIMITERS: dict[str, str] = {
    "block_start_string": "[%",
    "block_end_string": "%]",
    "variable_start_string": "[[",
    "variable_end_string": "]]",
    "comment_start_string": "[#",
    "comment_end_string": "#]",
}
_COMPILE_COMMENT = re.compile(r"\[#.*?#\]", re.DOTALL)
_BLANK_LINES = re.compile(r"\n[ \t]*(?:\n[ \t]*){2,}")
_LEFTOVER_MJML = re.compile(r"</?mj-[a-z-]+")
# After these, a line break changes nothing on screen (table structure, closed blocks,
# Outlook conditionals); see _break_lines.
_LINE_BREAK_AFTER = re.compile(
    r"(</tr>|</td>|</table>|<tbody>|</tbody>|</div>|<!\[endif\]-->)(?!\n)"
)
_PREVIEW = PreviewTracker()


@dataclass(frozen=True, slots=True)
class CompiledEmail:
    """One template + subject (+ preheader) variant, ready for per-recipient rendering."""

    name: str
    text_name: str
    lang: str
    subject_source: str
    subject: Template
    preheader: Template | None
    html: Template
    text: Template
    html_source: str


@dataclass(frozen=True, slots=True)
class RenderedEmail:
    subject: str
    html: str
    text: str
    preheader: str = ""  # shown by the studio's preview next to the subject
    # ``html`` as the template's output chunks (``"".join(html_parts) == html``): the
    # MIME layer encodes the static ones once per campaign (issue 22).
    html_parts: tuple[str, ...] = ()


# --- environments -------------------------------------------------------------------------


# The system text of the shared layout and components (header, footer, unsubscribe,
# order tables), in the installation's language (UMKM_LANG). Inserted at compile time
# with ``[[ t("email....") ]]``, so it costs nothing per recipient. Campaign content
# (subjects, template bodies) is written by Dinas staff in the language they choose.


@lru_cache(maxsize=1)
def _compile_env() -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(
        loader=FileSystemLoader(str(TEMPLATES_DIR)),
        undefined=StrictUndefined,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        **_COMPILE_DELIMITERS,
    )
    install_jinja(env)
    return env


def _memoized(func: Callable[..., str], lang: str) -> Callable[..., str]:
    """Cache a formatting filter: Babel costs ~10-30 µs per call, prices repeat a lot."""
    bound = partial(func, lang=lang)
    cached = lru_cache(maxsize=8192)(bound)

    def apply(value: Any, *args: Any, **kwargs: Any) -> str:
        if args or kwargs:
            return bound(value, *args, **kwargs)
        try:
            return cached(value)
        except TypeError:  # unhashable value: format it uncached
            return bound(value)

    return apply


@lru_cache(maxsize=8)
def runtime_env(autoescape: bool, lang: str = "id") -> Environment:
    """The templating environment with filters bound to ``lang`` and memoized."""
    env = jinja_env(autoescape).overlay()
    env.filters = dict(env.filters)  # overlay() shares the dict with the parent env
    for name in ("rupiah", "tanggal", "tanggal_pendek", "jam"):
        env.filters[name] = _memoized(getattr(formatting, name), lang)
    env.getattr = _dict_first_getattr(env.getattr)  # type: ignore[method-assign,assignment]
    env.call = _engine_functions_first(env.call)  # type: ignore[method-assign]
    return env


class EngineFunction:
    """A function the *engine* puts in the render context (``track``, ``open_pixel``).

    The sandbox vets every call a template makes (~6 µs each here); functions handed in
    by the engine itself need no vetting, and an email makes a dozen such calls.
    Templates can only call these, not reach anything through them.
    """

    __slots__ = ("func",)

    def __init__(self, func: Callable[..., Any]) -> None:
        self.func = func

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.func(*args, **kwargs)


def _engine_functions_first(sandboxed: Callable[..., Any]) -> Callable[..., Any]:
    """Engine functions, and ``get`` of a plain dict, are called without the sandbox.

    Why ``dict.get``: the layouts ask ``p.get('marketplaces')`` for every product in
    both parts, and the sandbox's vetting costs ~5 µs a call.  The sandbox allows that
    call anyway (it reads, never changes, and cannot build a large value); any other
    method, and ``get`` with keyword arguments, still goes through it.
    """

    def call(context: Any, obj: Any, *args: Any, **kwargs: Any) -> Any:
        if type(obj) is EngineFunction:
            kwargs.pop("_loop_vars", None)  # bookkeeping Jinja adds to every call
            kwargs.pop("_block_vars", None)
            return obj.func(*args, **kwargs)
        if type(obj) is BuiltinMethodType and type(obj.__self__) is dict \
                and obj.__name__ == "get":
            kwargs.pop("_loop_vars", None)
            kwargs.pop("_block_vars", None)
            if not kwargs:
                return obj(*args)
        return sandboxed(context, obj, *args, **kwargs)

    return call


_LOOP_COUNTERS = frozenset({"index", "index0", "revindex", "revindex0", "first", "last",
                            "length", "depth", "depth0"})


def _dict_first_getattr(sandboxed: Callable[[Any, str], Any]) -> Callable[[Any, str], Any]:
    """``p.name`` on a plain dict reads the key first, then asks the sandbox.

    Why: the render context is plain dicts, and the sandbox's attribute path first tries
    a Python attribute (an exception per lookup, ~100 lookups per email).  Reading a dict
    item exposes nothing the sandbox protects (``p["name"]`` is allowed anyway), and it
    makes ``order.items`` the order lines instead of ``dict.items``.

    ``p.get`` of a dict and the counters of a loop (``loop.last``) are what the sandbox
    allows for these types anyway; its check walks the mutable-type table with
    ``isinstance`` on ABCs (~5 µs), and the layouts ask for them in every product card.
    """

    def getattr_(obj: Any, attribute: str) -> Any:
        if type(obj) is dict:
            try:
                return obj[attribute]
            except KeyError:
                if attribute == "get":
                    return obj.get
        elif type(obj) is LoopContext and attribute in _LOOP_COUNTERS:
            return getattr(obj, attribute)
        return sandboxed(obj, attribute)

    return getattr_


# --- compile --------------------------------------------------------------------------------


def normalize_template_name(template: str) -> str:
    """``promotional`` / ``email/promotional`` / ``email/promotional.mjml`` -> the last."""
    name = template.strip().lstrip("/")
    if not name.startswith("email/"):
        name = "email/" + name
    if not name.endswith(".mjml"):
        name += ".mjml"
    return name


_STAMP_TTL_NS = 2_000_000_000
_stamp_state: dict[str, int] = {"checked_at": -_STAMP_TTL_NS, "newest": -1}


def _templates_stamp() -> int:
    """Newest mtime under templates/email: an edited template is recompiled, not stale.

    Checked at most every two seconds, so calling :func:`compile_email` per recipient
    stays a dictionary lookup.
    """
    now = time.monotonic_ns()
    if now - _stamp_state["checked_at"] < _STAMP_TTL_NS:
        return _stamp_state["newest"]
    newest = 0
    for folder in (TEMPLATES_DIR / "email", TEMPLATES_DIR / "email" / "layouts"):
        try:
            with os.scandir(folder) as entries:
                for entry in entries:
                    if entry.is_file():
                        newest = max(newest, entry.stat().st_mtime_ns)
        except FileNotFoundError:
            continue
    _stamp_state.update(checked_at=now, newest=newest)
    return newest


def compile_email(
    template: str, subject: str, *, preheader: str | None = None, lang: str = "id"
) -> CompiledEmail:
    """Compile (cached) a template and its subject/preheader expressions.

    Raises :class:`TemplateProblem` with the template name and line when anything in the
    chain (Jinja compile pass, MJML, per-recipient Jinja syntax, text sibling) is wrong.
    """
    return _compile(normalize_template_name(template), subject, preheader, lang,
                    _templates_stamp())


@lru_cache(maxsize=256)
def _compile(
    name: str, subject: str, preheader: str | None, lang: str, _stamp: int
) -> CompiledEmail:
    text_env = runtime_env(False, lang)
    subject_t = _from_string(text_env, subject, "subject")
    preheader_t = None if preheader is None else _from_string(text_env, preheader, "preheader")
    mjml_source = _expand(name, lang, has_preheader=preheader is not None)
    try:
        html_source = mjml2html(mjml_source, disable_comments=True)
    except Exception as exc:  # MRML raises its own error type for unparsable MJML
        raise TemplateProblem(f"MJML tidak valid: {exc}", template=name) from exc
    leftover = _LEFTOVER_MJML.search(html_source)
    if leftover:
        raise TemplateProblem(
            f"elemen MJML tidak dikenal atau salah tempat: {leftover.group(0)}>", template=name
        )
    html_source = _break_lines(html_source)
    html_t = _runtime_template(name, html_source, lang, autoescape=True)
    text_name = name.removesuffix(".mjml") + ".txt"
    text_t = _runtime_template(text_name, _expand(text_name, lang, has_preheader=False), lang,
                               autoescape=False)
    return CompiledEmail(name, text_name, lang, subject, subject_t, preheader_t, html_t, text_t,
                         html_source)


def _break_lines(html: str) -> str:
    """Put MRML's one-line body on many short lines, once per compile.

    Why: SMTP caps lines at 998 characters anyway, and quoted-printable encoding of
    short, mostly static lines can be cached (:class:`engine.message.mime.QuotedPrintableCache`).
    """
    return _LINE_BREAK_AFTER.sub("\\1\n", html)


def _from_string(env: Environment, source: str, what: str) -> Template:
    try:
        return env.from_string(source)
    except TemplateSyntaxError as exc:
        raise TemplateProblem(exc.message or str(exc), template=what, lineno=exc.lineno) from exc


def _syntax_problem(exc: TemplateSyntaxError, fallback: str) -> TemplateProblem:
    return TemplateProblem(exc.message or str(exc), template=exc.name or fallback,
                           lineno=exc.lineno)


def _expand(name: str, lang: str, *, has_preheader: bool) -> str:
    """The compile pass: layout + components -> MJML with per-recipient Jinja left in."""
    try:
        template = _compile_env().get_template(name)
        with using_lang(lang):
            return template.render(lang=lang, has_preheader=has_preheader,
                                   dinas_short=DINAS["short_name"])
    except TemplateNotFound as exc:
        what = "bagian teks biasa" if name.endswith(".txt") else "template"
        raise TemplateProblem(f"{what} tidak ditemukan: templates/{exc.name}",
                              template=name) from exc
    except TemplateSyntaxError as exc:
        raise _syntax_problem(exc, name) from exc
    except UndefinedError as exc:
        raise TemplateProblem(f"variabel tidak dikenal: {exc.message}", template=name) from exc


_ESCAPED: dict[str, Markup] = {}
_ESCAPED_MAX = 2048  # ~0.5 MB at most
_ESCAPED_LONGEST = 256


def _escape_repeating(value: Any) -> Markup:
    """``markupsafe.escape`` with the same result, cheaper for what an email repeats.

    Why: an HTML render escapes ~50 values, ~1 µs each (a ``Markup`` built in Python).
    A tracked link is already ``Markup`` (escaping gives an equal copy: here the same
    object); short strings (a product name, a price, an offer) recur from one recipient
    to the next and are escaped once.  The table is bounded and emptied when full.
    """
    if type(value) is Markup:
        return value
    if type(value) is str and len(value) <= _ESCAPED_LONGEST:
        found = _ESCAPED.get(value)
        if found is None:
            if len(_ESCAPED) >= _ESCAPED_MAX:
                _ESCAPED.clear()
            found = _ESCAPED[value] = escape(value)
        return found
    return escape(value)


def _runtime_template(name: str, source: str, lang: str, *, autoescape: bool) -> Template:
    try:
        template = runtime_env(autoescape, lang).from_string(source)
        if autoescape:  # the compiled template's module looks ``escape`` up at each call
            cast(FunctionType, template.root_render_func).__globals__["escape"] = \
                _escape_repeating
        return template
    except TemplateSyntaxError as exc:
        # Line numbers of the expanded/compiled text mean nothing to the author.
        located = _locate_syntax_error(name, autoescape)
        raise (located or _syntax_problem(exc, name)) from exc


def _source_files(name: str) -> list[str]:
    """The template and every layout/component it pulls in at compile time."""
    env = _compile_env()
    seen: list[str] = []
    pending = [name]
    while pending:
        current = pending.pop(0)
        if current in seen:
            continue
        seen.append(current)
        try:
            source, _, _ = env.loader.get_source(env, current)  # type: ignore[union-attr]
            tree = env.parse(source)
        except (TemplateNotFound, TemplateSyntaxError):
            continue
        for node in tree.find_all((nodes.Extends, nodes.Import, nodes.FromImport, nodes.Include)):
            target = getattr(node, "template", None)
            if isinstance(target, nodes.Const) and isinstance(target.value, str):
                pending.append(target.value)
    return seen


def _raw_runtime_templates(
    name: str, lang: str, autoescape: bool
) -> Iterator[tuple[str, Template]]:
    """Each source file parsed as *runtime* Jinja (compile-time tags are plain text).

    Compile-time comments are blanked first (keeping line breaks) so prose in them can
    mention ``{{ }}`` freely.  Line numbers are those of the file on disk.
    """
    env = runtime_env(autoescape, lang)
    loader = _compile_env().loader
    assert loader is not None
    for source_name in _source_files(name):
        source, filename, _ = loader.get_source(_compile_env(), source_name)
        cleaned = _COMPILE_COMMENT.sub(lambda m: "\n" * m.group(0).count("\n"), source)
        code = env.compile(cleaned, source_name, filename)
        yield source_name, env.template_class.from_code(env, code, env.make_globals(None))


def _locate_syntax_error(name: str, autoescape: bool) -> TemplateProblem | None:
    try:
        for _ in _raw_runtime_templates(name, "id", autoescape):
            pass
    except TemplateSyntaxError as exc:
        return _syntax_problem(exc, name)
    return None


# --- render ---------------------------------------------------------------------------------


def _with_tracker(context: dict[str, Any], tracker: Tracker | None) -> dict[str, Any]:
    ctx = dict(context)
    if tracker is None and "track" not in ctx:
        tracker = _PREVIEW
    if tracker is not None:
        ctx["track"] = EngineFunction(tracker.track)
        ctx["open_pixel"] = EngineFunction(tracker.open_pixel)
    else:
        for key in ("track", "open_pixel"):
            if key in ctx and type(ctx[key]) is not EngineFunction:
                ctx[key] = EngineFunction(ctx[key])
        ctx.setdefault("open_pixel", EngineFunction(_PREVIEW.open_pixel))
    return ctx


def render_email(
    compiled: CompiledEmail, context: dict[str, Any], tracker: Tracker | None = None
) -> RenderedEmail:
    """Subject, HTML and text for one recipient.

    ``tracker`` (or ``track``/``open_pixel`` already in ``context``) makes the tracked
    links; without either, links point straight at their targets, as in a preview.
    Raises :class:`TemplateProblem` (template name, no line: see
    :func:`check_email_template` for the located variant).
    """
    ctx = _with_tracker(context, tracker)
    subject = " ".join(render_checked(compiled.subject, ctx, "subject").split())
    ctx["subject"] = subject
    ctx["preheader"] = (
        " ".join(render_checked(compiled.preheader, ctx, "preheader").split())
        if compiled.preheader is not None
        else ""
    )
    html_parts = tuple(render_checked_parts(compiled.html, ctx, compiled.name))
    text = render_checked(compiled.text, ctx, compiled.text_name)
    return RenderedEmail(subject, "".join(html_parts),
                         _BLANK_LINES.sub("\n\n", text).strip() + "\n", ctx["preheader"],
                         html_parts)


def check_email_template(name: str, context: dict[str, Any]) -> None:
    """Compile and render ``name`` with ``context``; raise TemplateProblem at file:line.

    Used by ``campaign validate``: the author must see *their* file and line, not a line
    of the compiled HTML.
    """
    compiled = compile_email(name, "", lang=str(context.get("lang") or "id"))
    try:
        render_email(compiled, context)
    except TemplateProblem as problem:
        located = _locate_render_error(compiled, _with_tracker(context, None), problem)
        raise located from problem.__cause__


def _locate_render_error(
    compiled: CompiledEmail, ctx: dict[str, Any], problem: TemplateProblem
) -> TemplateProblem:
    ctx = {"subject": "", "preheader": "", **ctx}
    if problem.template not in (compiled.name, compiled.text_name):
        return problem  # subject/preheader: a one-line expression, the name says it all
    autoescape = problem.template == compiled.name
    for _source_name, template in _raw_runtime_templates(
        str(problem.template), compiled.lang, autoescape
    ):
        try:
            render_checked(template, ctx, _source_name)
        except TemplateProblem as raw_problem:
            where = _template_frame(raw_problem.__cause__)
            if where:
                return _relocated(problem, where)
    return problem


def _relocated(problem: TemplateProblem, where: tuple[str, int]) -> TemplateProblem:
    return TemplateProblem(problem.message, template=where[0], lineno=where[1])


def _template_frame(exc: BaseException | None) -> tuple[str, int] | None:
    """The innermost template file/line in ``exc``'s traceback (Jinja rewrites frames)."""
    if exc is None:
        return None
    found: tuple[str, int] | None = None
    tb: TracebackType | None = exc.__traceback__
    root = str(TEMPLATES_DIR)
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename.startswith(root):
            found = (Path(filename).relative_to(root).as_posix(), tb.tb_lineno)
        tb = tb.tb_next
    return found
