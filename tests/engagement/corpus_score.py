"""Score :func:`engine.engagement.bounces.analyse` against tests/data/bounces/expected.json."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from engine.engagement import bounces

CORPUS = Path(__file__).resolve().parents[1] / "data" / "bounces"
NOTICE_KINDS = ("bounce", "complaint")


@dataclass
class Score:
    """The corpus figures: recognised, recipient, hard/soft, false positives."""

    messages: int = 0
    reports: int = 0
    recognised: int = 0
    recipients: int = 0
    recipients_ok: int = 0
    verdicts_ok: int = 0
    reasons_ok: int = 0
    false_positives: int = 0
    misses: list[str] = field(default_factory=list)

    def pct(self, part: int, whole: int) -> float:
        return 100.0 * part / whole if whole else 100.0

    def line(self, label: str) -> str:
        return (f"{label}: recognised {self.pct(self.recognised, self.reports):.1f}% "
                f"recipient correct {self.pct(self.recipients_ok, self.recipients):.1f}% "
                f"hard/soft agreement {self.pct(self.verdicts_ok, self.recipients):.1f}% "
                f"reason agreement {self.pct(self.reasons_ok, self.recipients):.1f}% "
                f"false positives {self.false_positives} ({self.messages} messages)")


def score(use_sisimai: bool) -> Score:
    expected = json.loads((CORPUS / "expected.json").read_text())
    result = Score()
    for name, want in sorted(expected.items()):
        result.messages += 1
        got = bounces.analyse((CORPUS / name).read_bytes(), use_sisimai=use_sisimai)
        if want["kind"] not in NOTICE_KINDS:
            if got.kind in NOTICE_KINDS and got.notices:
                result.false_positives += 1
                result.misses.append(f"{name}: false positive {got.kind}")
            continue
        result.reports += 1
        found = {n.recipient: n for n in got.notices}
        if got.kind == want["kind"] and got.notices:
            result.recognised += 1
        else:
            result.misses.append(f"{name}: {got.kind} {got.analyser}")
        for rcpt in want["recipients"]:
            result.recipients += 1
            notice = found.get(rcpt["address"])
            if notice is None:
                result.misses.append(f"{name}: recipient {rcpt['address']} not in "
                                     f"{sorted(str(k) for k in found)}")
                continue
            result.recipients_ok += 1
            result.verdicts_ok += notice.kind == rcpt["hard"]
            result.reasons_ok += notice.reason == rcpt["reason"]
            if notice.kind != rcpt["hard"] or notice.reason != rcpt["reason"]:
                result.misses.append(f"{name}: {notice.kind}/{notice.reason} "
                                     f"want {rcpt['hard']}/{rcpt['reason']} "
                                     f"({notice.analyser}: {notice.status} {notice.diagnostic})")
    return result
