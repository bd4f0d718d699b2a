"""Issue 18's acceptance of the studio's pages in Chromium at 1366 x 768: no critical or
serious axe-core violation, and no English user-facing text in the default language.

The scan is :mod:`tests.browser.axe` (axe-core from the npm registry, vendored at
install time). The language check reads what a person sees or hears: text outside
code, ``pre`` and the YAML editor, titles, labels, placeholders, button values and the
editor script's messages.
"""

from __future__ import annotations

import re
import typing
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel

from engine.campaign.schema import CampaignSpec
from tests.browser.axe import axe_blocking, axe_script
from tests.browser.conftest import Contexts, LiveServer
from tests.browser.studio_pages import walk_studio

# Tell-tale English words of an untranslated label, whole words, any case. Words that
# are Indonesian too (Status, Email, Total, Desktop) are not in the list.
ENGLISH = ("Save", "Submit", "Cancel", "Preview", "Campaign", "Campaigns", "Run", "Runs",
           "Draft", "Error", "Loading", "Send", "Sent", "Revision", "Revisions", "Approve",
           "Review", "Delete", "Edit", "Search", "Next", "Previous", "Back", "Schedule",
           "Scheduled", "Running", "Paused", "Finished", "Failed", "Skipped", "Pending",
           "Progress", "Recipient", "Subject", "Audience", "Products", "Page", "Show",
           "Close", "Logout", "Login", "Welcome", "Settings", "Resume", "Pause")
ENGLISH_RE = re.compile(r"\b(" + "|".join(ENGLISH) + r")\b", re.IGNORECASE)
# Dotted identifiers are code, not words: audit actions (campaign.launch), YAML paths
# (schedule.start).
IDENTIFIER_RE = re.compile(r"[A-Za-z_][\w-]*(?:\.[\w-]+)+")

# Text nodes outside code, YAML and scripts; labels the page shows or reads out; the
# editor's script messages (data-* of #studio).
USER_TEXT = """() => {
  const skip = new Set(['PRE', 'CODE', 'TEXTAREA', 'SCRIPT', 'STYLE', 'NOSCRIPT']);
  const out = [document.title];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    let el = n.parentElement, code = false;
    for (; el; el = el.parentElement) { if (skip.has(el.tagName)) { code = true; break; } }
    if (!code && n.textContent.trim()) out.push(n.textContent.trim());
  }
  for (const el of document.querySelectorAll('[title],[aria-label],[placeholder],[alt]')) {
    for (const a of ['title', 'aria-label', 'placeholder', 'alt']) {
      if (el.hasAttribute(a)) out.push(el.getAttribute(a));
    }
  }
  const buttons = 'input[type=submit],input[type=button],button[value]';
  for (const el of document.querySelectorAll(buttons)) {
    out.push(el.value);
  }
  const studio = document.getElementById('studio');
  if (studio) for (const a of studio.attributes) {
    if (a.name.startsWith('data-') && !a.value.startsWith('/')) out.push(a.value);
  }
  return out;
}"""


def _fields(annotation: Any) -> Iterator[Any]:
    yield annotation
    for arg in typing.get_args(annotation):
        yield from _fields(arg)


def yaml_keys(model: type[BaseModel] = CampaignSpec) -> set[str]:
    """Every key a campaign file may have: the problems list quotes them as written."""
    keys: set[str] = set()
    for name, field in model.model_fields.items():
        keys.add(field.alias or name)
        for kind in _fields(field.annotation):
            if isinstance(kind, type) and issubclass(kind, BaseModel) and kind is not model:
                keys |= yaml_keys(kind)
    return keys


def english_words(text: str, keys: set[str]) -> list[str]:
    """The tell-tale English words of ``text``, less identifiers and lower-case YAML keys."""
    return [m.group(0) for m in ENGLISH_RE.finditer(IDENTIFIER_RE.sub(" ", text))
            if m.group(0) not in keys]


def test_every_studio_page_has_no_serious_axe_violation(live_server: LiveServer,
                                                        contexts: Contexts) -> None:
    script = axe_script()
    found: dict[str, list[dict[str, Any]]] = {}
    scanned: list[str] = []

    def scan(page: Any, name: str) -> None:
        scanned.append(name)
        if blocking := axe_blocking(page, script):
            found[name] = blocking

    walk_studio(contexts, live_server, scan, bypass_csp=True)
    assert scanned == ["list-empty", "gallery", "editor-problem", "editor-preview",
                       "revisions", "revisions-submitted", "queue", "review", "run", "audit",
                       "list"]
    report = [f"{name}: [{v['impact']}] {v['id']} ({v['help']}) at {'; '.join(v['nodes'])}"
              for name, violations in found.items() for v in violations]
    assert not report, "\n".join(report)


def test_no_english_words_on_the_studio_pages(live_server: LiveServer,
                                              contexts: Contexts) -> None:
    hits: list[str] = []
    seen: list[str] = []
    keys = yaml_keys()
    assert {"subject", "schedule", "audience"} <= keys

    def read(page: Any, name: str) -> None:
        texts: list[str] = page.evaluate(USER_TEXT)
        seen.append(name)
        assert len(texts) > 10, (name, texts)  # the page has content to read
        hits.extend(f"{name}: {words} in {text!r}" for text in texts
                    if (words := english_words(text, keys)))

    walk_studio(contexts, live_server, read)
    assert len(seen) == 11
    assert not hits, "\n".join(hits)
