"""Fixtures of the browser tests: a live server, Chromium, and a campaign that really mails.

* ``live_server``: uvicorn serving :func:`web.app.create_app` in a background thread on a
  free loopback port, against the test's SQLite database (``sqlite_settings``).
  ``BASE_URL`` is that server's URL, so the tracked links of every mail point at it, and
  ``SMTP_HOST``/``SMTP_PORT`` name the loopback ``smtp_server`` (aiosmtpd).
* ``browser``: the Debian Chromium (``/usr/bin/chromium``) driven by Playwright;
  ``playwright install`` cannot download here. When the browser is missing,
  ``scripts/ensure-system-deps.sh`` installs it; with ``CI=true`` a browser that is still
  missing is a failure, locally a skip.
* ``contexts``: opens browser contexts (one per person: owner, staff, mail reader) with a
  normal desktop user agent - ``engine.engagement.events`` counts a "HeadlessChrome" click as a
  bot - and with every request off the live server blocked, so nothing leaves the
  machine (an email's product photos live on the Dinas site). When a test fails, every
  open page is saved as a screenshot into the test's tmp dir.
* ``campaign``: schedules, launches and dispatches a real promotional campaign through
  the engine (the dashboard has no launch button; staff launch with ``umkm campaign
  launch``, i.e. :func:`engine.delivery.scheduler.launch`).
"""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.campaign.loader import load_campaign
from engine.campaign.schema import CampaignSpec
from engine.config import Settings, get_settings, reset_settings
from engine.db import session_factory
from engine.delivery import scheduler
from engine.delivery.context import reset_process_state
from engine.delivery.enqueue import run_in_process
from engine.models import Delivery, DeliveryStatus, utcnow
from tests.conftest import service_missing
from tests.smtp_server import ReceivedMessage, ScriptedSMTPServer
from web.app import create_app

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
# A person's browser: engine.engagement.events flags "HeadlessChrome" (and scripts) as
# link scanners.
DESKTOP_UA = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
              "Chrome/124.0.0.0 Safari/537.36")
CAMPAIGN_KEY = "promo-uji-peramban"
CAMPAIGN_NAME = "Promo Produk Pilihan TTS"
CAMPAIGN_YAML = f"""\
version: 1
id: {CAMPAIGN_KEY}
name: {CAMPAIGN_NAME}
type: promotional
tags: [uji-peramban]
schedule:
  start: 2099-01-05 09:00
audience:
  include: [{{consent: marketing}}]
products: {{opt_in: required, per_message: 3}}
offer: {{kind: new_product, title: Produk Baru UMKM TTS}}
channels:
  email:
    template: email/promotional.mjml
    subject: "Produk pilihan untuk {{{{ customer.first_name }}}}"
"""


# --- failure screenshots -----------------------------------------------------------------


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Keep each phase's report on the item, so fixtures know whether the test failed."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


def _failed(request: pytest.FixtureRequest) -> bool:
    report = getattr(request.node, "rep_call", None)
    return report is None or report.failed


# --- the browser ---------------------------------------------------------------------------


def chromium_executable() -> str:
    """The system Chromium; installed by the project's setup script when it is missing."""
    if not Path(CHROMIUM).exists():
        subprocess.run(["bash", str(REPO / "scripts" / "ensure-system-deps.sh")],
                       check=False, capture_output=True, timeout=900)
    if not Path(CHROMIUM).exists():
        service_missing("Chromium", f"{CHROMIUM} not found (bash scripts/ensure-system-deps.sh)")
    return CHROMIUM


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:  # pragma: no cover - dev dependency
        service_missing("Playwright", exc)
    executable = chromium_executable()
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


# --- the live server -----------------------------------------------------------------------


@dataclass
class LiveServer:
    url: str
    settings: Settings
    smtp: ScriptedSMTPServer

    def session(self) -> Session:
        return session_factory(self.settings)()

    def path_of(self, url: str) -> str:
        """``http://127.0.0.1:port/produk/3?x=1`` -> ``/produk/3?x=1`` (asserts it is ours)."""
        assert url.startswith(self.url + "/"), f"{url} is not on the live server"
        return url[len(self.url):]


def _serve(server: uvicorn.Server, sock: socket.socket) -> None:
    server.run(sockets=[sock])


@pytest.fixture
def live_server(sqlite_settings: Settings, smtp_server: ScriptedSMTPServer,
                monkeypatch: pytest.MonkeyPatch) -> Iterator[LiveServer]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))  # bound before BASE_URL is known: no port race
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    monkeypatch.setenv("BASE_URL", url)
    monkeypatch.setenv("SMTP_HOST", smtp_server.host)
    monkeypatch.setenv("SMTP_PORT", str(smtp_server.port))
    reset_settings()
    reset_process_state()
    settings = get_settings()
    config = uvicorn.Config(create_app(settings), log_level="warning", lifespan="off",
                            access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=_serve, args=(server, sock), name="live-uvicorn",
                              daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("the live uvicorn server did not start", pytrace=False)
        time.sleep(0.02)
    try:
        yield LiveServer(url, settings, smtp_server)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
        reset_process_state()


# --- browser contexts ---------------------------------------------------------------------


@dataclass
class Contexts:
    """Opens browser contexts that only ever talk to the live server."""

    browser: Any
    live: LiveServer
    opened: list[Any] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)

    def new(self, width: int = 1280, height: int = 900, **options: Any) -> Any:
        """A context of a ``width`` x ``height`` window (a phone: 390 x 844); ``options``
        go to Playwright (``bypass_csp=True`` lets the axe scan add its script)."""
        context = self.browser.new_context(user_agent=DESKTOP_UA, locale="id-ID",
                                           viewport={"width": width, "height": height},
                                           **options)
        context.set_default_timeout(10_000)
        context.route("**/*", self._only_live_server)
        self.opened.append(context)
        return context

    def new_page(self) -> Any:
        return self.new().new_page()

    def _only_live_server(self, route: Any) -> None:
        url = route.request.url
        if url.startswith((self.live.url + "/", "file:", "data:", "about:", "blob:")):
            route.continue_()
        else:
            self.blocked.append(url)
            route.abort()

    def screenshots(self, directory: Path) -> list[Path]:
        saved = []
        for c, context in enumerate(self.opened):
            for p, page in enumerate(context.pages):
                path = directory / f"failure-context{c}-page{p}.png"
                try:
                    page.screenshot(path=str(path), full_page=True)
                except Exception:  # a crashed page must not hide the test's own error
                    continue
                saved.append(path)
        return saved

    def close(self) -> None:
        for context in self.opened:
            context.close()


@pytest.fixture
def contexts(browser: Any, live_server: LiveServer, request: pytest.FixtureRequest,
             tmp_path: Path) -> Iterator[Contexts]:
    opened = Contexts(browser, live_server)
    yield opened
    if _failed(request):
        for path in opened.screenshots(tmp_path):
            print(f"screenshot: {path}")  # shown with the failure report
    opened.close()


# --- the campaign -------------------------------------------------------------------------


def html_part(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("html",))
    assert part is not None, "the mail has no HTML part"
    content: str = part.get_content()
    return content


@dataclass
class CampaignFlow:
    """Schedule -> launch -> dispatch of :data:`CAMPAIGN_YAML` on the live server's DB."""

    live: LiveServer
    tmp: Path
    spec: CampaignSpec = field(init=False)
    source: str = ""

    def __post_init__(self) -> None:
        path = self.tmp / f"{CAMPAIGN_KEY}.yaml"
        path.write_text(CAMPAIGN_YAML, encoding="utf-8")
        self.spec, self.source = load_campaign(path), str(path)

    def schedule(self) -> int:
        """Dinas registers the campaign for a future date: owners can join it now."""
        with self.live.session() as session:
            result = scheduler.launch(session, self.spec, self.source)
            assert result.run is not None and result.run.status.value == "scheduled"
            return result.run.id

    def launch_now(self) -> int:
        """Staff bring the scheduled run forward (``umkm campaign launch --now``)."""
        with self.live.session() as session:
            result = scheduler.launch(session, self.spec, self.source, start_now=True)
            assert result.run is not None and result.run.status.value == "running", \
                result.run and result.run.status
            return result.run.id

    def dispatch(self, run_id: int, expected: int = 1) -> list[ReceivedMessage]:
        """The embedded dispatcher sends the run; the mails arrive at the SMTP server."""
        sent = run_in_process(run_id, self.live.settings)
        assert sent.sent == expected, sent
        return self.live.smtp.wait_for(expected)

    def delivery(self, recipient: str) -> Delivery:
        with self.live.session() as session:
            found = session.scalars(select(Delivery).where(
                Delivery.recipient == recipient, Delivery.status == DeliveryStatus.sent)).one()
            return found

    def wait_past_bot_window(self, delivery: Delivery, seconds: float = 2.2) -> None:
        """A click < 2 s after sending is a gateway's scanner; a person is slower."""
        sent_at = delivery.sent_at
        assert sent_at is not None
        sent = sent_at if sent_at.tzinfo else sent_at.replace(tzinfo=utcnow().tzinfo)
        remaining = (sent + timedelta(seconds=seconds) - utcnow()).total_seconds()
        if remaining > 0:
            time.sleep(remaining)

    def open_mail(self, page: Any, message: ReceivedMessage) -> Path:
        """Open the received HTML part as a mail client shows it (a local file)."""
        path = self.tmp / "mail.html"
        path.write_text(html_part(message.message), encoding="utf-8")
        page.goto(path.as_uri())
        return path


@pytest.fixture
def campaign(live_server: LiveServer, tmp_path: Path) -> CampaignFlow:
    return CampaignFlow(live_server, tmp_path)
