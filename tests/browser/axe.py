"""The axe-core scan of a page: its critical and serious violations (issue 18).

axe-core comes from the npm registry at install time: ``scripts/ensure-system-deps.sh``
(run by ``make test``) puts it in ``var/vendor/axe``; it is never committed nor loaded
from a CDN. Without it the scan skips locally and fails in CI. The pages' CSP forbids
inline scripts, so a scanned page's context is opened with ``bypass_csp=True`` to add
axe's script. The preview frames are sandboxed without scripts: axe checks the frames
themselves (their titles) from the page, not the email inside them (``iframes: false``),
which the mail templates' own tests cover.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from tests.browser.conftest import REPO
from tests.conftest import service_missing

AXE = REPO / "var" / "vendor" / "axe" / "node_modules" / "axe-core" / "axe.min.js"
BLOCKING = ("critical", "serious")
RUN_AXE = """async () => {
  const result = await axe.run(document, {iframes: false, resultTypes: ['violations']});
  return result.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.map(n => n.target.join(' ') + ': ' + n.failureSummary)}));
}"""


def axe_script() -> Path:
    """``axe.min.js`` as the setup script vendors it; a missing one fails in CI."""
    if not AXE.exists():
        subprocess.run(["bash", str(REPO / "scripts" / "ensure-system-deps.sh")],
                       check=False, capture_output=True, timeout=900)
    if not AXE.exists():
        service_missing("axe-core", f"{AXE} is missing: `bash scripts/ensure-system-deps.sh` "
                                    "installs it from the npm registry (npm install axe-core@4)")
    return AXE


def axe_blocking(page: Any, script: Path | None = None) -> list[dict[str, Any]]:
    """The page's critical and serious violations (its context must bypass CSP)."""
    page.add_script_tag(path=str(script or axe_script()))
    violations: list[dict[str, Any]] = page.evaluate(RUN_AXE)
    return [v for v in violations if v["impact"] in BLOCKING]
