"""The report as a real PDF: the very HTML report printed by headless Chromium.

Why Chromium and not a PDF library: the PDF must show exactly what the HTML report shows
(the same SVG charts, the same tables), so the one HTML document is printed by the same
browser engine the project already uses for its browser tests (``/usr/bin/chromium``).
Playwright drives it because only the DevTools print call takes a header and footer
*template*: the Dinas letterhead on every page and "Halaman 2 dari 5" at the bottom.

Why a subprocess: Playwright's sync API allows one driver per process, and the caller may
be a web worker thread or a test process that already drives a browser; a short-lived
``python -m engine.reporting.pdf IN OUT`` keeps every caller free of that rule (and a hung
browser is killed by the timeout instead of hanging the caller).

Without Chromium there is no PDF: :class:`PdfUnavailable` says so in Indonesian; nothing
ever returns HTML under a PDF name.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import ClassVar

from markupsafe import escape

from engine.common.errors import BadRequest
from engine.common.i18n import t
from engine.message.templating import DINAS

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
PDF_TIMEOUT_SECONDS = 180
LETTERHEAD_REGENCY = "Pemerintah Kabupaten Timor Tengah Selatan"
LETTERHEAD_OFFICE = "Dinas Koperasi dan UMKM"


class PdfUnavailable(BadRequest):
    """No PDF can be made here (no Chromium, or it failed); the message says what to do."""

    http_status: ClassVar[int] = 503


def chromium_path() -> str | None:
    """``UMKM_CHROMIUM`` when set, else the Debian Chromium, else one on ``PATH``."""
    configured = os.environ.get("UMKM_CHROMIUM")
    for candidate in (configured, CHROMIUM, shutil.which("chromium")):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def header_template() -> str:
    """The letterhead Chromium prints at the top of every page."""
    return ('<div style="font-size:8px;width:100%;padding:0 12mm;'
            'font-family:DejaVu Sans,Arial,sans-serif;color:#16212b;'
            'border-bottom:1px solid #1f5f8b">'
            f"<b>{escape(LETTERHEAD_REGENCY)}</b> · {escape(LETTERHEAD_OFFICE)}"
            f'<span style="float:right">{escape(DINAS.get("address", ""))}</span></div>')


def footer_template() -> str:
    """``Halaman 2 dari 5``: Chromium fills the page number and the page count."""
    words = t("report.pdf.page", page='<span class="pageNumber"></span>',
              pages='<span class="totalPages"></span>')
    return ('<div style="font-size:8px;width:100%;padding:0 12mm;text-align:right;'
            'font-family:DejaVu Sans,Arial,sans-serif;color:#5b6770">'
            f'<span class="title"></span> · {words}</div>')


def html_to_pdf(html: str) -> bytes:
    """Print ``html`` (a self-contained document) to PDF bytes, or raise PdfUnavailable."""
    executable = chromium_path()
    if executable is None:
        raise PdfUnavailable("report.pdf.no_chromium", path=CHROMIUM)
    with tempfile.TemporaryDirectory(prefix="umkm-pdf-") as tmp:
        source, target = Path(tmp) / "laporan.html", Path(tmp) / "laporan.pdf"
        source.write_text(html, encoding="utf-8")
        # The printer must be this very code, whatever the caller's working directory.
        root = str(Path(__file__).resolve().parents[2])
        path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
        env = {**os.environ, "UMKM_PDF_HEADER": header_template(), "PYTHONPATH": path,
               "UMKM_PDF_FOOTER": footer_template(), "UMKM_CHROMIUM": executable}
        try:
            done = subprocess.run([sys.executable, "-m", "engine.reporting.pdf", str(source),
                                   str(target)], capture_output=True, text=True, env=env,
                                  timeout=PDF_TIMEOUT_SECONDS, check=False)
        except subprocess.TimeoutExpired as exc:
            raise PdfUnavailable("report.pdf.failed", error="timeout") from exc
        data = target.read_bytes() if target.is_file() else b""
        if done.returncode != 0 or not data.startswith(b"%PDF"):
            error = (done.stderr or done.stdout or "").strip().splitlines()[-1:] or ["?"]
            raise PdfUnavailable("report.pdf.failed", error=error[0][:300])
        return data


def _print_with_playwright(source: Path, target: Path, executable: str) -> None:
    """Chromium's own print to PDF, with the letterhead and page-number templates."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(source.as_uri(), wait_until="load")
            page.pdf(path=str(target), format="A4", landscape=True, print_background=True,
                     display_header_footer=True,
                     header_template=os.environ.get("UMKM_PDF_HEADER", header_template()),
                     footer_template=os.environ.get("UMKM_PDF_FOOTER", footer_template()),
                     margin={"top": "18mm", "bottom": "14mm", "left": "10mm",
                             "right": "10mm"})
        finally:
            browser.close()


def _print_with_cli(source: Path, target: Path, executable: str) -> None:
    """Without Playwright: ``chromium --print-to-pdf`` (its default footer numbers pages)."""
    subprocess.run([executable, *CHROMIUM_ARGS, f"--print-to-pdf={target}",
                    source.as_uri()], check=True, capture_output=True,
                   timeout=PDF_TIMEOUT_SECONDS)


def _main(argv: list[str]) -> int:
    source, target = Path(argv[0]), Path(argv[1])
    executable = os.environ.get("UMKM_CHROMIUM") or CHROMIUM
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _print_with_cli(source, target, executable)
    else:
        _print_with_playwright(source, target, executable)
    return 0


if __name__ == "__main__":  # pragma: no cover - run by html_to_pdf in a subprocess
    raise SystemExit(_main(sys.argv[1:]))
