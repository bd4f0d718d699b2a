"""DMARC aggregate reports (RFC 7489 appendix C): unpack, parse safely, store once.

Where reports come from: the ``rua`` mailbox (a Maildir, DMARC_MAILDIR; the beat job and
``umkm dmarc import``) or files saved by hand. A report arrives as raw XML, gzip
(``.xml.gz``), zip, or a whole mail carrying one of those as an attachment.

Why so careful: the XML comes from anyone who claims to be a mailbox provider. It is
parsed with :mod:`defusedxml` with DTDs forbidden (so no entity expansion, "billion
laughs", and no external entities), decompression is bounded (:data:`MAX_BYTES`: a zip
bomb stops at the limit, nothing is inflated in full), and a zip may hold only a few
members. Anything refused raises :class:`DmarcRefused` with an Indonesian sentence, and
nothing of that report is stored.

Idempotent: a report is one row per (org_name, report_id); importing it again (the
same mail in the CLI and the mailbox) is reported as a duplicate and counts once.
"""

from __future__ import annotations

import email
import email.policy
import gzip
import io
import ipaddress
import logging
import mailbox
import zipfile
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from xml.etree.ElementTree import Element, ParseError

import defusedxml
import defusedxml.ElementTree as SafeET
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine.common.i18n import t
from engine.config import Settings
from engine.db import session_scope
from engine.models import DmarcRecord, DmarcReport

log = logging.getLogger(__name__)

MAX_BYTES = 20 * 1024 * 1024  # largest report after decompression (real ones: a few kB)
MAX_ZIP_MEMBERS = 3  # providers send one XML per zip
MAX_RECORDS = 50_000
MAX_NESTING = 2  # a mail may carry a zip, never a mail carrying a mail...
PROCESSED_FOLDER = "processed"
REFUSED_FOLDER = "refused"
IMPORTED, DUPLICATE, REFUSED = "imported", "duplicate", "refused"
_ATTACHMENT_TYPES = frozenset({
    "application/zip", "application/x-zip-compressed", "application/gzip",
    "application/x-gzip", "application/xml", "text/xml", "application/octet-stream"})


class DmarcRefused(Exception):
    """A report refused before anything was stored; ``str()`` is the Indonesian reason."""


@dataclass(frozen=True)
class AuthResult:
    method: str  # "dkim" or "spf"
    domain: str
    result: str


@dataclass(frozen=True)
class Row:
    """One ``<record>`` of a report."""

    source_ip: str
    count: int
    disposition: str
    dkim_aligned: bool
    spf_aligned: bool
    header_from: str
    auth_results: tuple[AuthResult, ...] = ()


@dataclass(frozen=True)
class Report:
    org_name: str
    report_id: str
    email: str
    begin: datetime
    end: datetime
    policy_domain: str
    policy_p: str
    rows: tuple[Row, ...]


@dataclass(frozen=True)
class ImportOutcome:
    """What happened to one file or mail: imported, duplicate or refused (and why)."""

    source: str
    status: str
    message: str = ""
    org_name: str = ""
    report_id: str = ""
    records: int = 0


@dataclass
class MaildirSummary:
    messages: int = 0
    outcomes: list[ImportOutcome] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)


# ----------------------------------------------------------------------------- unpacking
def _bounded_gzip(data: bytes) -> bytes:
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as handle:
            out = handle.read(MAX_BYTES + 1)
    except (OSError, EOFError, zlib.error) as exc:
        raise DmarcRefused(t("dmarc.error.archive")) from exc
    if len(out) > MAX_BYTES:
        raise DmarcRefused(t("dmarc.error.too_big", mb=MAX_BYTES // (1024 * 1024)))
    return out


def _bounded_zip(data: bytes) -> bytes:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = [m for m in archive.infolist() if not m.is_dir()]
            if not members or len(archive.infolist()) > MAX_ZIP_MEMBERS:
                raise DmarcRefused(t("dmarc.error.zip_members", n=MAX_ZIP_MEMBERS))
            member = next((m for m in members if m.filename.lower().endswith(".xml")),
                          members[0])
            if member.file_size > MAX_BYTES:
                raise DmarcRefused(t("dmarc.error.too_big", mb=MAX_BYTES // (1024 * 1024)))
            with archive.open(member) as handle:
                out = handle.read(MAX_BYTES + 1)  # the declared size may lie
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error, NotImplementedError,
            RuntimeError) as exc:
        raise DmarcRefused(t("dmarc.error.archive")) from exc
    if len(out) > MAX_BYTES:
        raise DmarcRefused(t("dmarc.error.too_big", mb=MAX_BYTES // (1024 * 1024)))
    return out


def _attachments(data: bytes) -> list[bytes]:
    """The report-like parts of an RFC 5322 mail (zip, gzip, XML), in mail order."""
    message = email.message_from_bytes(data, policy=email.policy.compat32)
    found: list[bytes] = []
    for part in message.walk():
        if part.is_multipart():
            continue
        kind = part.get_content_type().lower()
        name = (part.get_filename() or "").lower()
        if kind in _ATTACHMENT_TYPES or name.endswith((".zip", ".gz", ".xml")):
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes) and payload:
                found.append(payload)
    return found


def xml_of(data: bytes, depth: int = 0) -> bytes:
    """The report XML inside ``data`` (raw XML, gzip, zip or a mail carrying one)."""
    if len(data) > MAX_BYTES:
        raise DmarcRefused(t("dmarc.error.too_big", mb=MAX_BYTES // (1024 * 1024)))
    head = data[:4]
    if head[:2] == b"\x1f\x8b":
        return _bounded_gzip(data)
    if head == b"PK\x03\x04":
        return _bounded_zip(data)
    if data.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] == b"<":
        return data
    if depth >= MAX_NESTING:
        raise DmarcRefused(t("dmarc.error.not_report"))
    refused: DmarcRefused | None = None
    for payload in _attachments(data):
        try:
            return xml_of(payload, depth + 1)
        except DmarcRefused as exc:
            refused = exc  # the next attachment may still be the report
    raise refused or DmarcRefused(t("dmarc.error.not_report"))


# ----------------------------------------------------------------------------- parsing
def _local(tag: object) -> str:
    """The tag without its namespace (Outlook.com's reports carry one, Google's none)."""
    return str(tag).rsplit("}", 1)[-1]


def _child(element: Element | None, name: str) -> Element | None:
    if element is None:
        return None
    return next((c for c in element if _local(c.tag) == name), None)


def _children(element: Element | None, name: str) -> list[Element]:
    return [] if element is None else [c for c in element if _local(c.tag) == name]


def _text(element: Element | None, path: str, default: str | None = None) -> str:
    """The stripped text at ``a/b/c`` below ``element``; missing and no default: refused."""
    node = element
    for name in path.split("/"):
        node = _child(node, name)
    value = (node.text or "").strip() if node is not None else ""
    if value:
        return value[:255]
    if default is not None:
        return default
    raise DmarcRefused(t("dmarc.error.missing", field=path))


def _epoch(element: Element, path: str) -> datetime:
    raw = _text(element, path)
    try:
        return datetime.fromtimestamp(int(raw), UTC)
    except (ValueError, OverflowError, OSError) as exc:
        raise DmarcRefused(t("dmarc.error.value", field=path, value=raw[:40])) from exc


def _auth_results(record: Element) -> tuple[AuthResult, ...]:
    results = _child(record, "auth_results")
    return tuple(AuthResult(method, _text(r, "domain", ""), _text(r, "result", "none").lower())
                 for method in ("dkim", "spf") for r in _children(results, method))


def _row(record: Element) -> Row:
    ip = _text(record, "row/source_ip")
    try:
        ip = str(ipaddress.ip_address(ip))
    except ValueError as exc:
        raise DmarcRefused(t("dmarc.error.value", field="source_ip", value=ip[:40])) from exc
    raw_count = _text(record, "row/count")
    if not raw_count.isdigit() or int(raw_count) > 10**9:
        raise DmarcRefused(t("dmarc.error.value", field="count", value=raw_count[:40]))
    return Row(
        source_ip=ip, count=int(raw_count),
        disposition=_text(record, "row/policy_evaluated/disposition", "none").lower()[:16],
        dkim_aligned=_text(record, "row/policy_evaluated/dkim", "fail").lower() == "pass",
        spf_aligned=_text(record, "row/policy_evaluated/spf", "fail").lower() == "pass",
        header_from=_text(record, "identifiers/header_from", "").lower(),
        auth_results=_auth_results(record))


def parse_xml(xml: bytes) -> Report:
    """The report in ``xml``; DTDs (so entities of any kind) are refused, not expanded."""
    try:
        root = SafeET.fromstring(xml, forbid_dtd=True, forbid_entities=True,
                                 forbid_external=True)
    except defusedxml.DefusedXmlException as exc:
        raise DmarcRefused(t("dmarc.error.entities")) from exc
    except (ParseError, ValueError) as exc:
        raise DmarcRefused(t("dmarc.error.xml")) from exc
    if _local(root.tag) != "feedback":
        raise DmarcRefused(t("dmarc.error.not_report"))
    records = _children(root, "record")
    if len(records) > MAX_RECORDS:
        raise DmarcRefused(t("dmarc.error.too_many", n=MAX_RECORDS))
    meta = _child(root, "report_metadata")
    policy = _child(root, "policy_published")
    if meta is None or policy is None:
        raise DmarcRefused(t("dmarc.error.missing", field="report_metadata/policy_published"))
    return Report(
        org_name=_text(meta, "org_name"), report_id=_text(meta, "report_id"),
        email=_text(meta, "email", ""), begin=_epoch(meta, "date_range/begin"),
        end=_epoch(meta, "date_range/end"), policy_domain=_text(policy, "domain").lower(),
        policy_p=_text(policy, "p", "none").lower()[:16],
        rows=tuple(_row(r) for r in records))


def parse_report(data: bytes) -> Report:
    """Unpack and parse one file or mail (raises :class:`DmarcRefused`)."""
    return parse_xml(xml_of(data))


# ----------------------------------------------------------------------------- storing
def store_report(session: Session, report: Report) -> bool:
    """Store ``report`` once; False when (org_name, report_id) is already stored.

    The insert runs in a savepoint: a concurrent import of the same report loses on the
    unique constraint and is told "duplicate", the caller's transaction unharmed.
    """
    existing = session.scalar(select(DmarcReport.id).where(
        DmarcReport.org_name == report.org_name, DmarcReport.report_id == report.report_id))
    if existing is not None:
        return False
    row = DmarcReport(org_name=report.org_name, report_id=report.report_id,
                      email=report.email or None, date_begin=report.begin,
                      date_end=report.end, policy_domain=report.policy_domain,
                      policy_p=report.policy_p)
    row.records = [DmarcRecord(
        source_ip=r.source_ip, count=r.count, disposition=r.disposition,
        dkim_aligned=r.dkim_aligned, spf_aligned=r.spf_aligned, header_from=r.header_from,
        auth_results=[{"method": a.method, "domain": a.domain, "result": a.result}
                      for a in r.auth_results]) for r in report.rows]
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        return False
    return True


def import_bytes(session: Session, data: bytes, source: str) -> ImportOutcome:
    """Parse and store one file or mail; refusals are outcomes, never exceptions."""
    try:
        report = parse_report(data)
    except DmarcRefused as exc:
        return ImportOutcome(source, REFUSED, str(exc))
    new = store_report(session, report)
    return ImportOutcome(source, IMPORTED if new else DUPLICATE, "", report.org_name,
                         report.report_id, len(report.rows))


def import_path(session: Session, path: Path) -> ImportOutcome:
    """One file from disk (read at most :data:`MAX_BYTES` + 1)."""
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_BYTES + 1)
    except OSError as exc:
        return ImportOutcome(str(path), REFUSED, t("dmarc.error.unreadable", error=str(exc)))
    return import_bytes(session, data, str(path))


def _folder(box: mailbox.Maildir, name: str) -> mailbox.Maildir:
    if name in box.list_folders():
        return box.get_folder(name)
    return box.add_folder(name)


def import_maildir(path: str | Path, settings: Settings | None = None) -> MaildirSummary:
    """Every mail of the Maildir's inbox once: imported and duplicate mail moves to
    ``processed``, refused mail to ``refused`` (for a person), so a second pass finds
    nothing new; a mail whose database work fails stays and is tried next time."""
    root = Path(path)
    if not (root / "new").is_dir() or not (root / "cur").is_dir():
        raise FileNotFoundError(t("dmarc.error.not_maildir", path=str(root)))
    box = mailbox.Maildir(str(root), factory=None, create=False)
    summary = MaildirSummary()
    for key in sorted(box.iterkeys()):
        try:
            raw = box.get_bytes(key)
        except KeyError:  # taken by a concurrent pass
            continue
        summary.messages += 1
        try:
            with session_scope(settings) as session:
                outcome = import_bytes(session, raw, key)
        except Exception:
            log.exception("DMARC report %s could not be stored; left in the inbox", key)
            continue
        summary.outcomes.append(outcome)
        target = _folder(box, REFUSED_FOLDER if outcome.status == REFUSED else PROCESSED_FOLDER)
        message = mailbox.MaildirMessage(raw)
        message.set_subdir("cur")
        message.add_flag("S")
        target.add(message)
        box.discard(key)
    return summary
