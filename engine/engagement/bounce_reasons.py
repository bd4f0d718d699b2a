"""Why a message bounced, and whether that is for good (hard) or may clear (soft).

The status class alone misleads: receivers answer ``5.0.0`` for a full mailbox, ``5.7.1``
for a spam filter and ``4.1.1`` for an unknown user.  So the verdict follows the
*reason* (Sisimai's vocabulary, which our fallback parser also produces): only reasons
that say the address itself is gone suppress at once; everything else is counted and
suppresses after ``soft_bounce_limit`` bounces within ``soft_bounce_window_days``.
A generic ``Status`` (``5.0.0``, ``4.0.0``) yields to the code in the diagnostic text.
"""

from __future__ import annotations

import re

# The address does not exist (or no longer): mailing it again cannot succeed.
HARD_REASONS = frozenset({"userunknown", "hostunknown", "hasmoved", "notaccept"})
NOT_BOUNCES = frozenset({"delivered", "vacation", "feedback"})

STATUS_RE = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.])")
GENERIC_STATUSES = frozenset({"5.0.0", "4.0.0", "2.0.0"})

# Status code -> reason; the most specific entry wins (x.y.z before x.y).
_STATUS_REASONS = {
    "1.1": "userunknown", "1.0": "userunknown", "1.2": "hostunknown", "1.3": "userunknown",
    "1.6": "hasmoved", "1.10": "notaccept", "1.8": "rejected", "1.7": "rejected",
    "2.1": "suspend", "2.2": "mailboxfull", "2.3": "mesgtoobig", "2.4": "systemerror",
    "3.1": "systemfull", "3.2": "notaccept", "3.4": "mesgtoobig", "3.0": "systemerror",
    "4.1": "networkerror", "4.2": "networkerror", "4.3": "systemerror",
    "4.4": "hostunknown", "4.6": "networkerror", "4.7": "expired", "4.0": "networkerror",
    "5.0": "systemerror", "5.3": "toomanyconn", "6.0": "contenterror",
    "7.0": "securityerror", "7.1": "rejected", "7.7": "securityerror",
    "7.8": "securityerror", "7.9": "securityerror", "7.13": "suspend",
    "7.26": "securityerror", "7.25": "blocked", "7.27": "notaccept",
}
_EXACT_STATUS = {"4.4.1": "expired", "5.4.1": "userunknown", "4.7.1": "blocked",
                 "5.1.0": "userunknown", "4.2.0": "mailboxfull", "5.5.0": "userunknown"}

# Diagnostic wording -> reason, checked in order (specific before general).
_TEXT_REASONS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (reason, re.compile(pattern, re.I)) for reason, pattern in (
        ("vacation", r"\b(out of (the )?office|on vacation|auto(matic)?[- ]?repl|cuti)\b"),
        ("expired", r"retry (time|timeout)|too long in (the )?queue|message expired|"
                    r"delivery time expired|has not been delivered for|"
                    r"could not be delivered within|not been able to deliver|expired"),
        ("mailboxfull", r"mailbox (is )?full|over ?quota|quota exceeded|exceeded (the )?quota|"
                        r"insufficient (disk )?space|mailbox size limit|not enough storage|"
                        r"storage (space )?exceeded|user.{0,20}full|full mailbox"),
        ("suspend", r"suspended|account (is )?(disabled|inactive|locked|blocked)|"
                    r"mailbox (is )?(disabled|inactive|frozen)|deactivated|"
                    r"not (active|activated)|temporarily (disabled|unavailable) account"),
        ("hasmoved", r"has moved|address changed|no longer (at|with) "),
        ("spamdetected", r"\bspam\b|junk mail|bulk mail|unsolicited|content rejected"),
        ("virusdetected", r"virus|malware|infected"),
        ("blocked", r"blacklist|blocklist|block ?list|black ?list|spamhaus|\bdnsbl\b|\brbl\b|"
                    r"ip (address )?(is )?(blocked|listed|banned)|client host .* blocked|"
                    r"poor reputation|reputation|access denied, banned|banned sending"),
        ("securityerror", r"\bspf\b|\bdkim\b|\bdmarc\b|authentication (required|failed)|"
                          r"not authenticated|tls required|encryption required"),
        ("policyviolation", r"policy|prohibited|not permitted|administrative prohibition"),
        ("filtered", r"filter|refused by (the )?recipient|rejected by (the )?recipient"),
        ("mesgtoobig", r"message (size|too (big|large))|too large|exceeds? (the )?size"),
        ("hostunknown", r"host (or domain name )?not found|domain (name )?not found|"
                        r"no such domain|name service error|unrouteable|unroutable|"
                        r"no mx|host unknown|domain does not exist|dns (error|lookup)|"
                        r"nxdomain|unknown host|bad destination system"),
        ("userunknown", r"user unknown|unknown user|no such (user|mailbox|recipient|address|"
                        r"person)|does( not|n't) exist|doesn't have|not exist|invalid "
                        r"(recipient|mailbox|address|user)|recipient (address )?rejected|"
                        r"mailbox (not found|unavailable|does not)|unknown (recipient|"
                        r"mailbox|address|local)|address rejected|not a valid|"
                        r"user not found|no mailbox|unrouteable address|not our customer|"
                        r"account (that you tried to reach )?does not|"
                        r"recipient not found|addressee unknown|unknown or illegal alias|"
                        r"no mailbox here|user doesn|bad recipient|invalid address|"
                        r"not found|unknown\b"),
        ("systemfull", r"system (is )?full|out of disk|disk full"),
        ("toomanyconn", r"too many (connections|messages|recipients)|rate limit|"
                        r"try (again )?later|temporarily deferred|throttl"),
        ("networkerror", r"connection (timed out|refused|reset)|network|unreachable|"
                         r"lost connection|timed out"),
        ("systemerror", r"system error|internal error|local error|server error|"
                        r"temporary (failure|error)|mail loop|loops back|too many hops"),
    ))


def status_of(text: str | None) -> str | None:
    """The first ``x.y.z`` status code in a field or a diagnostic."""
    found = STATUS_RE.search(str(text or ""))
    return ".".join(found.groups()) if found else None


def effective_status(status: str | None, diagnostic: str | None) -> str | None:
    """The Status field, unless it is generic and the diagnostic names a better one."""
    in_text = status_of(diagnostic)
    if status is None or (status in GENERIC_STATUSES and in_text
                          and in_text not in GENERIC_STATUSES):
        return in_text or status
    return status


def reason_from_status(status: str | None) -> str | None:
    if not status or status in GENERIC_STATUSES:
        return None
    if status in _EXACT_STATUS:
        return _EXACT_STATUS[status]
    _, subject, detail = status.split(".")
    return _STATUS_REASONS.get(f"{subject}.{detail}")


def reason_from_text(text: str | None) -> str | None:
    value = str(text or "")
    for reason, pattern in _TEXT_REASONS:
        if reason != "vacation" and pattern.search(value):
            return reason
    return None


def decide_reason(status: str | None, diagnostic: str | None, action: str = "") -> str:
    """The reason behind one failed recipient: words first when they are specific
    (``550 5.7.1`` "mailbox full" is a full mailbox), then the status code."""
    if action in ("expired",) :
        return "expired"
    code = effective_status(status, diagnostic)
    by_text = reason_from_text(diagnostic)
    by_code = reason_from_status(code)
    if by_text in ("mailboxfull", "suspend", "expired", "hasmoved", "spamdetected",
                   "blocked", "virusdetected", "securityerror", "hostunknown"):
        return by_text
    if by_code in ("userunknown", "hostunknown", "hasmoved", "mailboxfull", "mesgtoobig",
                   "expired", "suspend", "notaccept"):
        return by_code
    return by_text or by_code or ("onhold" if action == "delayed" else "undefined")


def is_hard(reason: str) -> bool:
    """Suppress at once (the address is gone) or count as soft (may clear)."""
    return reason in HARD_REASONS
