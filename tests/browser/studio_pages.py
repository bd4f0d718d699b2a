"""Every page of the campaign studio, each in a state that shows its content (issue 18).

The accessibility scan and the language check walk the same pages, so what one checks
the other checks too: the list (empty and with a running campaign), the starter
gallery, the editor (with an inline problem, then with the preview frames), the
revision page, the review queue and one review page, the run page and the audit log.
Staff pages are opened by a staff member, the admin's pages by an admin; both
sessions are real logins of the live server.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from playwright.sync_api import expect

from tests.browser.conftest import Contexts, LiveServer
from tests.browser.test_owner_to_click_flow import log_in
from tests.browser.test_studio_browser import (
    ADMIN,
    STAFF,
    line_of,
    open_starter,
    seed,
    sendable,
)

# Called with the page and a short name of what it shows.
Visit = Callable[[Any, str], None]


def staff_pages(page: Any, live: LiveServer, visit: Visit) -> None:
    """List, gallery, editor (a problem, then the preview), revision page; submits."""
    page.goto(live.url + "/dinas/kampanye")
    visit(page, "list-empty")
    page.goto(live.url + "/dinas/kampanye/baru")
    visit(page, "gallery")
    text = sendable(open_starter(page, live))
    broken = text.replace("    subject:", "    subjek:", 1)
    page.locator("#yaml").fill(broken)
    expect(page.locator(f"#problems li[data-line='{line_of(broken, 'subjek:')}']")).to_be_visible()
    visit(page, "editor-problem")
    page.locator("#yaml").fill(text)
    expect(page.locator("#check-status")).to_have_text("Kampanye valid.")
    page.locator("#preview-button").click()
    expect(page.locator("#pv-subject")).to_contain_text("diskon 15%")
    visit(page, "editor-preview")
    page.locator("#save-button").click()
    expect(page.locator("#save-status")).to_have_text("Tersimpan sebagai revisi 1.")
    page.locator("#save-link").click()
    expect(page.locator("article[data-revision='1']")).to_be_visible()
    visit(page, "revisions")
    page.locator("#submit-form button").click()
    expect(page.locator("p.notice")).to_contain_text("Revisi 1 diajukan")
    visit(page, "revisions-submitted")


def admin_pages(page: Any, live: LiveServer, visit: Visit) -> None:
    """Queue, review page, approve and launch now, run page, audit log, list."""
    page.goto(live.url + "/dinas/kampanye/tinjau")
    visit(page, "queue")
    page.locator("#review-queue a").first.click()
    expect(page.locator("#review-diff")).to_be_visible()
    visit(page, "review")
    page.locator("#approve-form input[value=sekarang]").check()
    page.locator("#approve-form button[type=submit]").click()
    expect(page.locator("#run-revision a")).to_be_visible()
    visit(page, "run")
    page.goto(live.url + "/dinas/audit")
    expect(page.locator("#audit-log")).to_be_visible()
    visit(page, "audit")
    page.goto(live.url + "/dinas/kampanye")
    expect(page.locator("#studio-campaigns")).to_be_visible()
    visit(page, "list")


def walk_studio(contexts: Contexts, live: LiveServer, visit: Visit, **options: Any) -> None:
    """Seed, then open every studio page at 1366 x 768 and call ``visit`` on each."""
    seed(live)
    staff = contexts.new(1366, 768, **options).new_page()
    log_in(staff, live, STAFF)
    staff_pages(staff, live, visit)
    admin = contexts.new(1366, 768, **options).new_page()
    log_in(admin, live, ADMIN)
    admin_pages(admin, live, visit)
