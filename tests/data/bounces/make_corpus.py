"""Write the bounce corpus (tests/data/bounces/*.eml + expected.json).

Written for this project from the published formats (RFC 3464 DSN, RFC 5965 ARF, RFC
3834 auto-replies) and the well-known plain-text layouts of each MTA; nothing is copied
from another test set.  Each MTA template is filled with several diagnostics (user
unknown, full mailbox, block lists, spam filters, suspended accounts, unknown hosts,
delays), so the variety of statuses and reasons per format is real.
Run: python tests/data/bounces/make_corpus.py
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SENDER = "pemasaran@umkm.ttskab.go.id"
NAMES = ["budi.santoso", "maria.tallo", "yohanes", "ani.nubatonis", "kornelis.b",
         "selfina", "agus.taneo", "yuliana.liu", "petrus.boimau", "margaretha"]
DOMAINS = ["contoh.id", "tokotenun.co.id", "desa-niki.id", "kupang-mail.net", "soe.web.id"]

# (status, smtp reply, diagnostic (R = recipient), expected reason)
DIAGS: list[tuple[str, str, str, str]] = [
    ("5.1.1", "550", "5.1.1 <R>: Recipient address rejected: User unknown in local "
     "recipient table", "userunknown"),
    ("5.1.1", "550", "5.1.1 The email account that you tried to reach does not exist. "
     "Please try double-checking the recipient's email address", "userunknown"),
    ("5.2.2", "552", "5.2.2 <R>: user is over quota, mailbox full", "mailboxfull"),
    ("5.7.1", "554", "5.7.1 Service unavailable; Client host [203.0.113.9] blocked using "
     "zen.spamhaus.org", "blocked"),
    ("5.7.1", "550", "5.7.1 Message rejected because it was identified as spam",
     "spamdetected"),
    ("5.2.1", "550", "5.2.1 <R>: The email account that you tried to reach is disabled "
     "(account suspended)", "suspend"),
    ("5.0.0", "550", "5.0.0 <R>... No such user here", "userunknown"),
    ("5.0.0", "552", "Requested mail action aborted: mailbox full (5.2.2)", "mailboxfull"),
]


def recipient(n: int) -> str:
    return f"{NAMES[n % len(NAMES)]}{n}@{DOMAINS[n % len(DOMAINS)]}"


def original(rcpt: str, n: int) -> str:
    return (f"Return-Path: <{SENDER}>\nFrom: Dinas Koperasi UMKM TTS <{SENDER}>\n"
            f"To: <{rcpt}>\nSubject: Promo tenun ikat minggu ini\n"
            f"Message-ID: <c{n:04d}.corpus@umkm.ttskab.go.id>\n"
            "Date: Tue, 01 Dec 2026 09:00:00 +0800\nMIME-Version: 1.0\n"
            "Content-Type: text/plain; charset=utf-8\n\nHalo, ada diskon tenun ikat.\n")


def head(sender: str, subject: str, extra: str = "") -> str:
    return (f"Return-Path: <>\nFrom: {sender}\nTo: {SENDER}\nSubject: {subject}\n"
            "Date: Tue, 01 Dec 2026 09:12:04 +0800\nMIME-Version: 1.0\n" + extra)


def dsn(sender: str, subject: str, human: str, rcpt: str, status: str, diag: str, n: int,
        *, action: str = "failed", mta: str = "mx.umkm.ttskab.go.id", extra: str = "",
        boundary: str = "=_dsn_BOUNDARY", headers_only: bool = False,
        per_rcpt_extra: str = "") -> str:
    """A textbook RFC 3464 report (Postfix, Sendmail, Courier, SES, Office 365)."""
    part3 = ("Content-Type: text/rfc822-headers\n\n" + original(rcpt, n).split("\n\n")[0]
             if headers_only else "Content-Type: message/rfc822\n\n" + original(rcpt, n))
    return (head(sender, subject, extra) +
            f'Content-Type: multipart/report; report-type=delivery-status;\n'
            f'\tboundary="{boundary}"\n\nThis is a MIME-encapsulated message.\n\n'
            f"--{boundary}\nContent-Type: text/plain; charset=us-ascii\n\n{human}\n\n"
            f"--{boundary}\nContent-Type: message/delivery-status\n\n"
            f"Reporting-MTA: dns; {mta}\nArrival-Date: Tue, 01 Dec 2026 09:12:02 +0800\n\n"
            f"Final-Recipient: rfc822; {rcpt}\n{per_rcpt_extra}Action: {action}\n"
            f"Status: {status}\nRemote-MTA: dns; mx.{rcpt.split('@')[1]}\n"
            f"Diagnostic-Code: smtp; {diag}\n\n--{boundary}\n{part3}\n--{boundary}--\n")


def postfix(r: str, st: str, code: str, d: str, n: int) -> str:
    human = (f"This is the mail system at host mx.umkm.ttskab.go.id.\n\nI'm sorry to have to "
             f"inform you that your message could not\nbe delivered to one or more recipients."
             f"\n\n                   The mail system\n\n<{r}>: host mx.{r.split('@')[1]}"
             f"[203.0.113.25] said: {code} {d} (in reply to RCPT TO command)")
    return dsn("MAILER-DAEMON@mx.umkm.ttskab.go.id (Mail Delivery System)",
               "Undelivered Mail Returned to Sender", human, r, st, f"{code} {d}", n)


def sendmail(r: str, st: str, code: str, d: str, n: int) -> str:
    human = (f"The original message was received at Tue, 1 Dec 2026 09:12:02 +0800\nfrom "
             f"localhost [127.0.0.1]\n\n   ----- The following addresses had permanent fatal "
             f"errors -----\n<{r}>\n    (reason: {code} {d})\n\n   ----- Transcript of "
             f"session follows -----\n... while talking to mx.{r.split('@')[1]}.:\n>>> "
             f"DATA\n<<< {code} {d}")
    return dsn("Mail Delivery Subsystem <MAILER-DAEMON@mx.umkm.ttskab.go.id>",
               "Returned mail: see transcript for details", human, r, st, f"{code} {d}", n,
               per_rcpt_extra=f"X-Actual-Recipient: rfc822; {r}\n")


def courier(r: str, st: str, code: str, d: str, n: int) -> str:
    human = (f"This is a delivery status notification from mx.umkm.ttskab.go.id,\nrunning "
             f"the Courier mail server, version 1.1.\n\nThe original message was received "
             f"on Tue, 01 Dec 2026.\n\n-------------------------------------------------\n"
             f"                  UNDELIVERABLE MAIL\n----------------------------------------"
             f"---------\n\n<{r}>:\n>>> RCPT TO:<{r}>\n<<< {code} {d}\n")
    return dsn("Courier mail server at mx.umkm.ttskab.go.id <@>",
               "NOTICE: mail delivery status.", human, r, st, f"{code} {d}", n)


def office365(r: str, st: str, code: str, d: str, n: int) -> str:
    human = (f"Delivery has failed to these recipients or groups:\n\n{r}\nThe recipient's "
             f"server rejected the message.\n\nDiagnostic information for administrators:\n\n"
             f"Generating server: AM0PR01MB1234.eurprd01.prod.outlook.com\n\n{r}\n"
             f"Remote Server returned '{code} {d}'\n")
    return dsn("Microsoft Outlook <postmaster@umkmtts.onmicrosoft.com>",
               "Undeliverable: Promo tenun ikat minggu ini", human, r, st, f"{code} {d}", n,
               mta="AM0PR01MB1234.eurprd01.prod.outlook.com",
               extra="X-MS-Exchange-Message-Is-Ndr:\nContent-Language: en-US\n",
               boundary="_000_AM0PR01MB1234_", headers_only=True)


def amazon_ses(r: str, st: str, code: str, d: str, n: int) -> str:
    human = ("An error occurred while trying to deliver the mail to the following "
             f"recipients:\n{r}")
    return dsn("MAILER-DAEMON@amazonses.com", "Delivery Status Notification (Failure)",
               human, r, st, f"{code} {d}", n, mta="a27-11.smtp-out.us-west-2.amazonses.com",
               extra="X-SES-Outgoing: 2026.12.01-54.240.27.11\n"
               "Feedback-ID: 1.us-west-2.x:AmazonSES\n",
               boundary="=_dYqP2K7Ts")


def broken(r: str, st: str, code: str, d: str, n: int) -> str:
    """Generic RFC 3464 whose declared boundary differs from the one used."""
    text = dsn("Mail Delivery System <MAILER-DAEMON@relay.example.net>",
               "Delivery Status Notification (Failure)", f"Delivery to {r} failed.", r, st,
               f"{code} {d}", n, mta="relay.example.net", boundary="real-boundary-77")
    return text.replace('boundary="real-boundary-77"', 'boundary="declared-but-unused"')


def exim(r: str, st: str, code: str, d: str, n: int, *, who: str = "mx.umkm.ttskab.go.id",
         lang_intro: str = "") -> str:
    return (head(f"Mail Delivery System <Mailer-Daemon@{who}>",
                 "Mail delivery failed: returning message to sender",
                 f"X-Failed-Recipients: {r}\nAuto-Submitted: auto-replied\n"
                 "Content-Type: text/plain; charset=utf-8\n") +
            f"\n{lang_intro}This message was created automatically by mail delivery software."
            "\n\nA message that you sent could not be delivered to one or more of its\n"
            "recipients. This is a permanent error. The following address(es) failed:\n\n"
            f"  {r}\n    host mx.{r.split('@')[1]} [203.0.113.7]\n    SMTP error from "
            f"remote mail server after RCPT TO:<{r}>:\n    {code} {d}\n\n"
            "------ This is a copy of the message, including all the headers. ------\n\n"
            + original(r, n))


def mailru(r: str, st: str, code: str, d: str, n: int) -> str:
    intro = ("Это письмо создано автоматически\nсервером Mail.Ru, отвечать на него не нужно."
             "\n\n")
    return exim(r, st, code, d, n, who="corp.mail.ru", lang_intro=intro)


def qmail(r: str, st: str, code: str, d: str, n: int) -> str:
    return (head("MAILER-DAEMON@mail.umkm.ttskab.go.id", "failure notice",
                 "Content-Type: text/plain\n") +
            "\nHi. This is the qmail-send program at mail.umkm.ttskab.go.id.\nI'm afraid I "
            "wasn't able to deliver your message to the following addresses.\nThis is a "
            "permanent error; I've given up. Sorry it didn't work out.\n\n"
            f"<{r}>:\n203.0.113.40 does not like recipient.\nRemote host said: {code} {d}\n"
            "Giving up on 203.0.113.40.\n\n--- Below this line is a copy of the message.\n\n"
            + original(r, n))


def yahoo(r: str, st: str, code: str, d: str, n: int) -> str:
    return (head("MAILER-DAEMON@yahoo.com", "Failure Notice",
                 "Content-Type: text/plain\n") +
            "\nSorry, we were unable to deliver your message to the following address.\n\n"
            f"<{r}>:\nRemote host said: {code} {d} [RCPT_TO]\n\n"
            "--- Below this line is a copy of the message.\n\n" + original(r, n))


def opensmtpd(r: str, st: str, code: str, d: str, n: int) -> str:
    return (head("Mailer Daemon <MAILER-DAEMON@smtpd.umkm.ttskab.go.id>",
                 "Delivery status notification: error", "Content-Type: text/plain\n") +
            "\nHi!\n\nThis is the MAILER-DAEMON, please DO NOT REPLY to this e-mail.\n\n"
            "An error has occurred while attempting to deliver a message for\nthe following "
            f"list of recipients:\n\n{r}: {code} {d}\n\nBelow is a copy of the original "
            "message:\n\n" + original(r, n))


def gmail(r: str, st: str, code: str, d: str, n: int) -> str:
    return (head("Mail Delivery Subsystem <mailer-daemon@googlemail.com>",
                 "Delivery Status Notification (Failure)",
                 f"X-Failed-Recipients: {r}\nContent-Type: text/plain; charset=ISO-8859-1\n") +
            "\nDelivery to the following recipient failed permanently:\n\n"
            f"     {r}\n\nTechnical details of permanent failure:\nGoogle tried to deliver "
            f"your message, but it was rejected by the server for the recipient domain "
            f"{r.split('@')[1]} by mx.{r.split('@')[1]}. [203.0.113.61].\n\nThe error that "
            f"the other server returned was:\n{code} {d}\n\n----- Original message -----\n\n"
            + original(r, n))


def google_groups(r: str, st: str, code: str, d: str, n: int) -> tuple[str, str]:
    group = r.split("@")[0] + "@googlegroups.com"
    return (head("Mail Delivery Subsystem <mailer-daemon@googlemail.com>",
                 "Delivery Status Notification (Failure)",
                 f"X-Failed-Recipients: {group}\nX-Google-Smtp-Source: AGRyM1s\n"
                 "Content-Type: text/plain; charset=UTF-8\n") +
            f"\n** Address not found **\n\nYour message wasn't delivered to {group} because "
            "the address couldn't be found. Check for typos or unnecessary spaces and try "
            "again.\n\nThe response from the remote server was:\n"
            f"550 5.1.1 Google Groups: the group {group} does not exist\n\n"
            "----- Original message -----\n\n" + original(group, n)), group


def exchange2003(r: str, st: str, code: str, d: str, n: int) -> str:
    return (head("System Administrator <postmaster@exchange.umkm.ttskab.go.id>",
                 "Undeliverable: Promo tenun ikat minggu ini",
                 "X-MS-Has-Attach: yes\nX-Mailer: Internet Mail Service (5.5.2653.19)\n"
                 "Content-Type: text/plain; charset=us-ascii\n") +
            "\nYour message\n\n  To:      " + r + "\n  Subject: Promo tenun ikat minggu ini\n"
            "  Sent:    Tue, 1 Dec 2026 09:00:00 +0800\n\ndid not reach the following "
            f"recipient(s):\n\n{r} on Tue, 1 Dec 2026 09:12:04 +0800\n    {d}\n"
            f"    <exchange.umkm.ttskab.go.id #{st}>\n")


def exchange2007(r: str, st: str, code: str, d: str, n: int) -> str:
    return (head("Microsoft Exchange <MAILER-DAEMON@ex2007.umkm.ttskab.go.id>",
                 "Undeliverable: Promo tenun ikat minggu ini",
                 "Content-Language: en-US\nContent-Type: text/plain; charset=us-ascii\n") +
            f"\nDelivery has failed to these recipients or distribution lists:\n\n{r}\n"
            "The recipient's e-mail system rejected the message.\n\n"
            "Diagnostic information for administrators:\n\nGenerating server: "
            f"ex2007.umkm.ttskab.go.id\n\n{r}\n#{code} {d} ##\n\nOriginal message headers:\n\n"
            + original(r, n).split("\n\n")[0] + "\n")


def domino(r: str, st: str, code: str, d: str, n: int) -> str:
    return (head("Mail Router <postmaster@domino.umkm.ttskab.go.id>",
                 "DELIVERY FAILURE: " + d[:60], "Content-Type: text/plain\n") +
            "\nYour message\n\n  Subject: Promo tenun ikat minggu ini\n\nwas not delivered "
            f"to:\n\n  {r}\n\nbecause:\n\n  {code} {d}\n")


BOUNCE_FORMATS: dict[str, Any] = {
    "postfix": postfix, "sendmail": sendmail, "courier": courier, "office365": office365,
    "amazonses": amazon_ses, "broken_rfc3464": broken, "exim": exim, "mailru": mailru,
    "qmail": qmail, "yahoo": yahoo, "opensmtpd": opensmtpd, "gmail": gmail,
    "exchange2003": exchange2003, "exchange2007": exchange2007, "domino": domino,
    "google_groups": google_groups,
}

HARD = {"userunknown", "hostunknown", "hasmoved", "notaccept"}


def arf(rcpts: list[str], n: int, *, with_rcpt: bool = True) -> str:
    """RFC 5965 report; several recipients make a multi-report digest."""
    reports = []
    for i, r in enumerate(rcpts):
        b = f"arf{n}x{i}"
        rcpt_line = f"Original-Rcpt-To: {r}\n" if with_rcpt else ""
        reports.append(
            f'Content-Type: multipart/report; report-type=feedback-report; boundary="{b}"\n\n'
            f"--{b}\nContent-Type: text/plain\n\nThis is an email abuse report.\n\n--{b}\n"
            "Content-Type: message/feedback-report\n\nFeedback-Type: abuse\n"
            "User-Agent: ExampleFBL/1.0\nVersion: 1\nOriginal-Mail-From: <"
            f"{SENDER}>\n{rcpt_line}Arrival-Date: Tue, 01 Dec 2026 09:20:00 +0800\n"
            f"Source-IP: 203.0.113.80\n\n--{b}\nContent-Type: message/rfc822\n\n"
            + original(r, n * 10 + i) + f"\n--{b}--\n")
    subject = "Abuse report"
    if len(reports) == 1:
        return head("FBL <fbl@isp.example.net>", subject) + reports[0]
    outer = f"digest{n}"
    return (head("FBL <fbl@isp.example.net>", "Abuse reports (digest)") +
            f'Content-Type: multipart/mixed; boundary="{outer}"\n\n' +
            "".join(f"--{outer}\nContent-Type: message/rfc822\n\n"
                    + head("FBL <fbl@isp.example.net>", subject) + rep + "\n"
                    for rep in reports) + f"--{outer}--\n")


def text_fbl(r: str, n: int, style: str) -> str:
    if style == "ses":
        return (head("complaints@email-abuse.amazonses.com", "Complaint notification",
                     "Content-Type: text/plain; charset=UTF-8\n") +
                "\nA complaint was received from the recipient of your message.\n\n"
                f"Feedback-Type: abuse\nOriginal-Rcpt-To: {r}\n"
                f"Original-Mail-From: {SENDER}\nArrival-Date: Tue, 01 Dec 2026\n")
    return (head("iCloud Mail <noreply@icloud.com>", "Spam report: complaint about your "
                 "message", "Content-Type: text/plain; charset=UTF-8\n") +
            f"\nA recipient marked as spam a message you sent. The recipient reported "
            "this message as spam.\n\nFeedback-Type: abuse\n"
            f"Original-Rcpt-To: <{r}>\nReported-Domain: umkm.ttskab.go.id\n")


def vacation(r: str, n: int, style: int) -> str:
    subjects = ["Out of Office: Promo tenun ikat minggu ini", "Automatic reply: Promo tenun",
                "Balasan otomatis: sedang cuti", "Auto: Promo tenun ikat", "Vacation notice"]
    extra = ["Auto-Submitted: auto-replied\n", "X-Autoreply: yes\n",
             "Auto-Submitted: auto-replied\n", "Precedence: auto_reply\n", "X-Autorespond: 1\n"]
    return (f"Return-Path: <{r}>\nFrom: <{r}>\nTo: {SENDER}\nSubject: {subjects[style]}\n"
            f"Date: Tue, 01 Dec 2026 10:00:00 +0800\n{extra[style]}MIME-Version: 1.0\n"
            "Content-Type: text/plain; charset=utf-8\n\nSaya sedang cuti sampai 10 Desember "
            "dan tidak membaca email. I am out of the office until December 10.\n")


def delivered(r: str, n: int) -> str:
    return dsn("MAILER-DAEMON@mx.umkm.ttskab.go.id (Mail Delivery System)",
               "Successful Mail Delivery Report",
               f"Your message was successfully delivered to {r}.", r, "2.0.0",
               "250 2.0.0 Ok: queued as 4QhT5", n, action="delivered")


def delayed(r: str, n: int) -> str:
    return dsn("MAILER-DAEMON@mx.umkm.ttskab.go.id (Mail Delivery System)",
               "Delayed Mail (still being retried)",
               f"<{r}>: connect to mx.{r.split('@')[1]}: Connection timed out", r, "4.4.1",
               "connect to mx: Connection timed out", n, action="delayed")


def expired_dsn(r: str, n: int) -> str:
    return dsn("MAILER-DAEMON@mx.umkm.ttskab.go.id (Mail Delivery System)",
               "Undelivered Mail Returned to Sender",
               f"<{r}>: message expired after 5 days in the queue", r, "4.4.7",
               "delivery time expired", n, action="expired")


def main() -> None:
    for old in HERE.glob("*.eml"):
        old.unlink()
    expected: dict[str, Any] = {}
    n = 0

    def put(name: str, text: str, kind: str, rcpts: list[dict[str, str]]) -> None:
        (HERE / f"{name}.eml").write_text(text, encoding="utf-8")
        expected[f"{name}.eml"] = {"kind": kind, "recipients": rcpts}

    for fmt, build in BOUNCE_FORMATS.items():
        for i, (status, code, diag, reason) in enumerate(DIAGS):
            n += 1
            r = recipient(n)
            text = build(r, status, code, diag.replace("<R>", f"<{r}>"), n)
            if isinstance(text, tuple):  # Google Groups: the group is the recipient
                text, r = text
                reason = "userunknown"
            put(f"{fmt}_{i:02d}", text, "bounce",
                [{"address": r, "reason": reason,
                  "hard": "hard" if reason in HARD else "soft"}])
            if fmt == "google_groups":
                break
    for i in range(4):
        n += 1
        put(f"delayed_{i:02d}", delayed(recipient(n), n) if i % 2 else
            expired_dsn(recipient(n), n), "bounce",
            [{"address": recipient(n), "reason": "expired", "hard": "soft"}])
    for i in range(4):
        n += 1
        put(f"arf_single_{i:02d}", arf([recipient(n)], n), "complaint",
            [{"address": recipient(n), "reason": "feedback", "hard": "complaint"}])
    for i in range(2):
        n += 1
        rs = [recipient(n + k) for k in range(3)]
        put(f"arf_multi_{i:02d}", arf(rs, n), "complaint",
            [{"address": r, "reason": "feedback", "hard": "complaint"} for r in rs])
        n += 3
    for i, style in enumerate(["ses", "icloud", "ses", "icloud"]):
        n += 1
        put(f"fbl_text_{style}_{i:02d}", text_fbl(recipient(n), n, style), "complaint",
            [{"address": recipient(n), "reason": "feedback", "hard": "complaint"}])
    for i in range(5):
        n += 1
        put(f"vacation_{i:02d}", vacation(recipient(n), n, i), "auto-reply", [])
    for i in range(3):
        n += 1
        put(f"delivered_{i:02d}", delivered(recipient(n), n), "delivered", [])
    (HERE / "expected.json").write_text(json.dumps(expected, indent=1, sort_keys=True) + "\n")
    print(len(expected), "messages")


if __name__ == "__main__":
    main()
