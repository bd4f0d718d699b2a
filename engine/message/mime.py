"""Fast RFC 5322 / MIME assembly from a per-campaign skeleton.

Why not ``email.message.EmailMessage``: building and serialising one costs ~3.8 ms here
(policy objects, header registry, generator), a ceiling of ~250 messages/s per core.
A campaign sends the same shape thousands of times, so everything that does not
change per recipient (From, MIME structure, boundary, part headers) is encoded once in
:class:`MessageSkeleton`, and :meth:`MessageSkeleton.build` only joins bytes:

* headers are RFC 2047 encoded (UTF-8, ``B``) when not ASCII, folded to <= 78
  characters, and stripped of CR/LF (no header injection through a customer name);
* the body is ``multipart/alternative`` (text/plain first, then text/html), each part
  UTF-8 quoted-printable through :func:`binascii.b2a_qp` (lines <= 76 characters);
* CRLF everywhere, as SMTP and DKIM expect;
* the boundary starts with ``=_``, which quoted-printable can never produce, so it
  cannot collide with content;
* no line starts with ``.`` (quoted-printable writes it ``=2E``, folded header lines
  start with a space, header names may not start with a dot), so SMTP has nothing to
  dot-stuff and need not search for it.

The tests parse the result with the standard library parser (``policy.default``).
"""

from __future__ import annotations

import binascii
import re
import secrets
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from email.utils import format_datetime

from engine.common.formatting import WITA
from engine.message.dkim import (
    DkimSigner,
    canonical_header_lines,
    canonicalize_header_relaxed,
    canonicalize_lines_relaxed,
    end_canonical_body,
)

__all__ = [
    "MessageSkeleton",
    "QuotedPrintableCache",
    "encode_header_value",
    "format_address",
]

CRLF = "\r\n"
_MAX_LINE = 78
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]+")
# ftext (printable ASCII except ':'), not starting with '.': a built message has no line
# that starts with a dot (``OutboundMessage.no_leading_dots``).
_HEADER_NAME = re.compile(r"^[!-\-/-9;-~][!-9;-~]*$")
_QUOTE_NEEDED = re.compile(r'[^A-Za-z0-9!#$%&\'*+/=?^_`{|}~ -]')
_EW_PREFIX = "=?utf-8?b?"
_EW_OVERHEAD = len(_EW_PREFIX) + 2  # + "?="


def _clean(value: str) -> str:
    """Header text on one line: CR, LF and other controls become a single space."""
    return _CONTROL.sub(" ", value).strip()


def _encoded_words(text: str, first_budget: int, budget: int = _MAX_LINE - 1) -> list[str]:
    """Split ``text`` into RFC 2047 encoded words that each fit a folded line.

    Each word holds whole characters (never half a UTF-8 sequence), as RFC 2047 §5 asks.
    """
    words: list[str] = []
    chunk = bytearray()
    limit = max(3, (first_budget - _EW_OVERHEAD) // 4 * 3)
    for char in text:
        raw = char.encode("utf-8")
        if chunk and len(chunk) + len(raw) > limit:
            words.append(_EW_PREFIX + binascii.b2a_base64(bytes(chunk), newline=False).decode()
                         + "?=")
            chunk.clear()
            limit = (budget - _EW_OVERHEAD) // 4 * 3
        chunk += raw
    if chunk or not words:
        words.append(_EW_PREFIX + binascii.b2a_base64(bytes(chunk), newline=False).decode() + "?=")
    return words


def _fold(name: str, tokens: list[str]) -> str:
    """``Name: tok tok`` folded before a token when a line would pass 78 characters."""
    line = f"{name}:"
    lines: list[str] = []
    for token in tokens:
        if len(line) + 1 + len(token) > _MAX_LINE and line.strip() and not line.endswith(":"):
            lines.append(line)
            line = " " + token
        else:
            line += " " + token
    lines.append(line)
    return CRLF.join(lines) + CRLF


def encode_header_value(name: str, value: str) -> str:
    """One unstructured header (Subject, X-...), encoded when needed and folded."""
    if not _HEADER_NAME.match(name):
        raise ValueError(f"invalid header name: {name!r}")
    value = _clean(value)
    if value.isascii() and "=?" not in value and all(len(w) < 900 for w in value.split()):
        return _fold(name, value.split() or [""])
    first_budget = _MAX_LINE - len(name) - 2
    return _fold(name, _encoded_words(value, first_budget))


def _address_tokens(name: str | None, address: str, first_budget: int) -> list[str]:
    address = _clean(address)
    if not address or any(ch in address for ch in "<>,; ") or not address.isascii():
        raise ValueError(f"invalid or non-ASCII email address: {address!r}")
    name = _clean(name or "")
    if not name:
        return [address]
    if name.isascii():
        if _QUOTE_NEEDED.search(name):
            name = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
        return [*name.split(" "), f"<{address}>"]
    return [*_encoded_words(name, first_budget), f"<{address}>"]


def format_address(header: str, name: str | None, address: str) -> str:
    """``To: Name <addr>`` with the display name quoted or RFC 2047 encoded."""
    return _fold(header, _address_tokens(name, address, _MAX_LINE - len(header) - 2))


_QP_MAX = 76  # RFC 2045 §6.7: encoded lines of at most 76 characters


# Printable ASCII and space, without '=': what quoted-printable writes as it is.
_QP_LITERAL = bytes(range(32, 61)) + bytes(range(62, 127))


def _qp_line(line: bytes) -> bytes:
    if len(line) <= _QP_MAX and line[:1] != b"." and line[-1:] != b" " \
            and not line.translate(None, _QP_LITERAL):
        # Encodes to itself (a tracked link, a plain line): skip the encoder and the
        # search for dots, ~1 µs, for the lines that differ per recipient.
        return line
    encoded = binascii.b2a_qp(line, quotetabs=False, istext=True, header=False).replace(
        b"\n", b"\r\n"
    )
    if encoded[:1] == b"." or b"\r\n." in encoded:
        encoded = _no_leading_dots(encoded)
    return encoded


def _no_leading_dots(encoded: bytes) -> bytes:
    """Every encoded line starting with ``.`` starts with ``=2E`` instead (the same
    character), wrapped again where that makes it longer than 76 characters.

    Why: SMTP doubles a dot at the start of a line (RFC 5321 §4.5.2); a message with
    none goes to the socket as it is, without a copy (``channels.email_smtp``).
    """
    out: list[bytes] = []
    for line in encoded.split(b"\r\n"):
        if line[:1] != b".":
            out.append(line)
        elif len(line) + 2 <= _QP_MAX:
            out.append(b"=2E" + line[1:])
        else:
            out.extend(_rewrapped(line))
    return b"\r\n".join(out)


_QP_ATOM = re.compile(rb"=[0-9A-F]{2}|.", re.DOTALL)


def _rewrapped(line: bytes) -> list[bytes]:
    """One encoded line that starts with ``.``, as lines of <= 76 characters with soft
    breaks, none starting with ``.`` (encoded escapes are never split)."""
    soft = line.endswith(b"=") and not _QP_ATOM.fullmatch(line[-3:])
    atoms = _QP_ATOM.findall(line[:-1] if soft else line)
    lines: list[bytes] = []
    current = b""
    for atom in atoms:
        if not current and atom == b".":
            atom = b"=2E"
        if len(current) + len(atom) > _QP_MAX - 1:  # room for the soft break "="
            lines.append(current + b"=")
            current = b"=2E" if atom == b"." else atom
        else:
            current += atom
    lines.append(current + (b"=" if soft else b""))
    return lines


# Lines of several pieces kept per generation: the repeating ones of a campaign (offer,
# product cards: a few hundred) fit; ~1 kB each, so memory stays under ~1 MB.
_PIECED_GENERATION = 512

_Block = tuple[str, bytes | None, bytes | None, str]
"""A chunk's text before its first line break, its complete lines (encoded, canonical;
None when there are none), its text after the last line break."""


class QuotedPrintableCache:
    """UTF-8 quoted-printable (CRLF, lines <= 76), line by line, remembering lines seen.

    Why: :func:`binascii.b2a_qp` costs ~8 ns per byte here, ~200 µs for a 27 kB MJML
    email, which alone would cap a core near 4,000 messages/s.  Quoted-printable state
    never crosses a hard line break, so each line encodes independently and the static
    lines of a campaign (nearly all of them; :mod:`engine.message.render` breaks the compiled
    HTML into lines) are encoded once.  Lines with per-recipient tokens miss and are
    encoded normally; the cache is emptied when full, so memory stays flat.

    The DKIM relaxed canonical form of each encoded line is remembered too (only where
    it differs, e.g. the double spaces MRML leaves in CSS): :meth:`encode_canonical`
    then gives the canonical body without a regex pass over 30 kB per message.
    """

    def __init__(self, maxsize: int = 4096) -> None:
        self.maxsize = maxsize
        self._lines: dict[bytes, bytes] = {}
        self._canonical: dict[bytes, bytes] = {}  # line -> canonical, where != encoded
        self._blocks: dict[str, _Block] = {}  # chunk with line breaks -> its lines
        self._soft: dict[str, tuple[bytes, bytes]] = {}  # piece -> soft-broken, canonical
        # A line of several pieces (static markup around an expression's output) ->
        # its physical lines and their canonical form. Most such lines repeat from one
        # recipient to the next (an offer, a product card); only a token's line differs.
        self._pieced: dict[tuple[str, ...], tuple[bytes, bytes]] = {}
        self._pieced_old: dict[tuple[str, ...], tuple[bytes, bytes]] = {}

    def encode(self, body: str) -> bytes:
        return b"\r\n".join(self._encoded_lines(body)[1])

    def encode_canonical(self, body: str) -> tuple[bytes, bytes]:
        """The encoded body and its relaxed canonical lines (RFC 6376 §3.4.4, without
        the end-of-body rule: :func:`engine.message.dkim.end_canonical_body`)."""
        lines, encoded = self._encoded_lines(body)
        canonical = map(self._canonical.get, lines, encoded)  # default: same as encoded
        return b"\r\n".join(encoded), b"\r\n".join(canonical)

    def _encoded_lines(self, body: str) -> tuple[list[bytes], list[bytes]]:
        data = body.encode("utf-8")
        if b"\r" in data:
            data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        lines = data.split(b"\n")
        cache = self._lines
        if len(cache) > self.maxsize:  # emptied before the look-ups: both dicts stay paired
            cache.clear()
            self._canonical.clear()
        encoded: list[bytes | None] = list(map(cache.get, lines))  # the hot path, in C
        if None in encoded:
            for index, found in enumerate(encoded):
                if found is None:
                    encoded[index] = self._remember(lines[index])
        return lines, encoded  # type: ignore[return-value]  # no None left

    def encode_canonical_parts(self, parts: Sequence[str]) -> tuple[bytes, bytes]:
        """:meth:`encode_canonical` of ``"".join(parts)``, byte for byte, from a
        template's output chunks.

        Why: splitting and looking up the ~420 lines of a 28 kB email costs ~80 µs per
        recipient although only ~15 of them differ.  The chunks of static template text
        are the same string objects at every render (their hash is cached), so the
        complete lines inside a chunk are encoded and joined once, and per recipient
        only the lines that contain output of an expression are looked up.
        """
        blocks = self._blocks
        if len(blocks) > self.maxsize:
            blocks.clear()
        if len(self._lines) > self.maxsize:  # both dicts stay paired
            self._lines.clear()
            self._canonical.clear()
        encoded: list[bytes] = []
        canonical: list[bytes] = []
        current: list[str] = []  # the pieces of the line being built
        after_cr = False  # the last chunk ended with CR: a LF opening this one is its pair
        for part in parts:
            if not part:
                continue
            if after_cr and part[:1] == "\n":
                part = part[1:]
            block = blocks.get(part)
            if block is None:
                if "\n" not in part and "\r" not in part:
                    current.append(part)
                    after_cr = False
                    continue
                block = blocks[part] = self._block(part)
            after_cr = part[-1:] == "\r"
            head, middle, middle_canonical, tail = block
            current.append(head)
            self._end_line(current, encoded, canonical)
            if middle is not None:
                encoded.append(middle)
                canonical.append(middle_canonical)  # type: ignore[arg-type]
            current = [tail]
        self._end_line(current, encoded, canonical)
        return b"\r\n".join(encoded), b"\r\n".join(canonical)

    def _end_line(self, pieces: list[str], encoded: list[bytes],
                  canonical: list[bytes]) -> None:
        """One line made of ``pieces``: a whole line of the cache when it is one piece,
        else each piece on physical lines of its own, joined by soft line breaks
        (RFC 2045 §6.7 rule 5: the decoded line is the same).  Why: a line with an
        expression's output is ~400 characters of static markup around a short value;
        the static pieces are then encoded once, and per recipient only the value."""
        if len(pieces) > 1:
            key = tuple(pieces)
            found = self._pieced.get(key)
            if found is None:
                found = self._pieced_old.get(key)
                if found is None:
                    found = self._pieced_line(pieces)
                self._remember_pieced(key, found)
            encoded.append(found[0])
            canonical.append(found[1])
            return
        line, line_canonical = self._line(pieces[0] if pieces else "")
        encoded.append(line)
        canonical.append(line_canonical)

    def _remember_pieced(self, key: tuple[str, ...], value: tuple[bytes, bytes]) -> None:
        """Two generations: when the new one is full it becomes the old one, so the lines
        every message repeats survive while those of one recipient (a token) fall out."""
        self._pieced[key] = value
        if len(self._pieced) > min(_PIECED_GENERATION, self.maxsize // 2):
            self._pieced_old = self._pieced
            self._pieced = {}

    def _pieced_line(self, pieces: list[str]) -> tuple[bytes, bytes]:
        """A line of several pieces, encoded (and canonical) piece by piece, joined."""
        pieces = [piece for piece in pieces if piece]
        if len(pieces) <= 1:
            return self._line(pieces[0] if pieces else "")
        encoded: list[bytes] = []
        canonical: list[bytes] = []
        soft = self._soft
        if len(soft) > self.maxsize:
            soft.clear()
        for piece in pieces[:-1]:
            found = soft.get(piece)
            if found is None:
                found = soft[piece] = _soft_segment(piece.encode("utf-8"))
            encoded.append(found[0])
            canonical.append(found[1])
        line, line_canonical = self._line(pieces[-1])
        encoded.append(line)
        canonical.append(line_canonical)
        return b"\r\n".join(encoded), b"\r\n".join(canonical)

    def _block(self, part: str) -> _Block:
        """A chunk with line breaks: the text before the first, the complete lines
        between (encoded and canonical, joined), the text after the last."""
        if "\r" in part:
            part = part.replace("\r\n", "\n").replace("\r", "\n")
        lines = part.split("\n")
        if len(lines) == 2:
            return lines[0], None, None, lines[1]
        inner = [self._line(line) for line in lines[1:-1]]
        return (lines[0], b"\r\n".join(e for e, _ in inner),
                b"\r\n".join(c for _, c in inner), lines[-1])

    def _line(self, text: str) -> tuple[bytes, bytes]:
        """One line (no line break in it), encoded and canonical."""
        line = text.encode("utf-8")
        encoded = self._lines.get(line)
        if encoded is None:
            encoded = self._remember(line)
        return encoded, self._canonical.get(line, encoded)

    def _remember(self, line: bytes) -> bytes:
        encoded = self._lines[line] = _qp_line(line)
        canonical = canonicalize_lines_relaxed(encoded)
        if canonical != encoded:
            self._canonical[line] = canonical
        return encoded


def _soft_segment(piece: bytes) -> tuple[bytes, bytes]:
    """``piece`` (part of a line) encoded on physical lines of its own that end in a
    soft line break, each at most 76 characters, and their relaxed canonical form."""
    encoded = _qp_line(piece)
    start = encoded.rfind(b"\r\n") + 2  # the last physical line (0 + 2 if only one)
    last = encoded[start:] if start >= 2 else encoded
    if len(last) < _QP_MAX:
        encoded += b"="
    else:  # no room for the "=": its last character(s) go to a line of their own
        atoms = _QP_ATOM.findall(last)
        keep = b"".join(atoms[:-1])
        rest = atoms[-1]
        if len(keep) + 1 > _QP_MAX:
            keep, rest = b"".join(atoms[:-2]), b"".join(atoms[-2:])
        head = encoded[:start] if start >= 2 else b""
        if rest[:1] == b".":
            rest = b"=2E" + rest[1:]
        encoded = head + keep + b"=\r\n" + rest + b"="
    return encoded, canonicalize_lines_relaxed(encoded)


class _DateCache:
    """``Date:`` changes once a second; formatting it per message is wasted work."""

    __slots__ = ("_second", "_value")

    def __init__(self) -> None:
        self._second = -1
        self._value = ""

    def now(self) -> str:
        second = int(time.time())
        if second != self._second:
            self._value = format_datetime(datetime.fromtimestamp(second, WITA))
            self._second = second
        return self._value


class MessageSkeleton:
    """The fixed part of every message of one campaign (run + variant); build per recipient.

    ``headers`` are static extra headers (e.g. ``Feedback-ID``); ``unsubscribe_mailto``
    adds a ``mailto:`` alternative to the one-click URL in ``List-Unsubscribe``.
    """

    def __init__(
        self,
        from_addr: str,
        from_name: str | None,
        domain: str,
        *,
        reply_to: str | None = None,
        unsubscribe_mailto: str | None = None,
        headers: Mapping[str, str] | None = None,
        boundary: str | None = None,
    ) -> None:
        self.domain = domain
        self.boundary = boundary or "=_umkm_" + secrets.token_hex(12)
        if not self.boundary.startswith("=_") or not re.fullmatch(r"[=_A-Za-z0-9.-]{3,70}",
                                                                  self.boundary):
            raise ValueError("boundary must start with '=_' and use [A-Za-z0-9=_.-]")
        self.unsubscribe_mailto = unsubscribe_mailto
        self._from = format_address("From", from_name, from_addr).encode("ascii")
        static = "MIME-Version: 1.0" + CRLF
        self._static = static.encode("ascii")
        trailer = ""
        if reply_to:
            trailer += format_address("Reply-To", None, reply_to)
        for name, value in (headers or {}).items():
            trailer += encode_header_value(name, value)
        trailer += f"Content-Type: multipart/alternative;{CRLF}"
        trailer += f' boundary="{self.boundary}"{CRLF}{CRLF}'
        self._trailer = trailer.encode("ascii")
        delimiter = f"--{self.boundary}{CRLF}"
        part_headers = "Content-Transfer-Encoding: quoted-printable" + CRLF + CRLF
        self._text_head = (
            f"This is a multi-part message in MIME format.{CRLF}{delimiter}"
            f'Content-Type: text/plain; charset="utf-8"{CRLF}{part_headers}'
        ).encode("ascii")
        self._html_head = (
            f'{CRLF}{delimiter}Content-Type: text/html; charset="utf-8"{CRLF}{part_headers}'
        ).encode("ascii")
        self._close = f"{CRLF}--{self.boundary}--{CRLF}".encode("ascii")
        self._text_head_canonical = canonicalize_lines_relaxed(self._text_head)
        self._html_head_canonical = canonicalize_lines_relaxed(self._html_head)
        self._close_canonical = canonicalize_lines_relaxed(self._close)
        self._dates = _DateCache()
        self._qp = QuotedPrintableCache()
        # DKIM: the canonical lines of the headers every message shares, done once.
        self._static_canonical = canonical_header_lines(
            self._from + self._static + self._trailer[:-2])

    def _list_unsubscribe(self, url: str, mailto: str | None) -> bytes:
        entries = [f"<{_clean(url)}>"]
        mailto = mailto or self.unsubscribe_mailto
        if mailto:
            entries.append(f"<{_clean(mailto)}>")
        tokens = [entry + ("," if i < len(entries) - 1 else "") for i, entry in enumerate(entries)]
        value = _fold("List-Unsubscribe", tokens)
        return (value + "List-Unsubscribe-Post: List-Unsubscribe=One-Click" + CRLF).encode("ascii")

    def build(
        self,
        to_addr: str,
        to_name: str | None,
        subject: str,
        text: str,
        html: str,
        message_id: str,
        list_unsubscribe_url: str | None = None,
        *,
        list_unsubscribe_mailto: str | None = None,
        date: datetime | None = None,
        extra_headers: Mapping[str, str] | None = None,
        signer: DkimSigner | None = None,
        html_parts: Sequence[str] = (),
    ) -> bytes:
        """The complete message as bytes (CRLF line ends), ready for SMTP and DKIM.

        Transactional mail passes no ``list_unsubscribe_url`` and gets no one-click
        headers; marketing mail must pass one (RFC 8058).  With ``signer`` the message
        comes DKIM-signed, its body hash taken over the canonical lines cached with the
        quoted-printable ones (the same bytes as ``signer.sign(message)``, cheaper).
        ``html_parts``: ``html`` as the template's output chunks (the same text),
        encoded through :meth:`QuotedPrintableCache.encode_canonical_parts`.
        """
        if not (message_id.startswith("<") and message_id.endswith(">") and "@" in message_id):
            raise ValueError(f"Message-ID must look like <id@domain>: {message_id!r}")
        date_value = format_datetime(date) if date is not None else self._dates.now()
        message_id = _clean(message_id)
        own = [
            format_address("To", to_name, to_addr).encode("ascii"),
            encode_header_value("Subject", subject).encode("ascii"),
            f"Date: {date_value}{CRLF}Message-ID: {message_id}{CRLF}".encode("ascii"),
        ]
        if list_unsubscribe_url:
            own.append(self._list_unsubscribe(list_unsubscribe_url, list_unsubscribe_mailto))
        head = [self._from, *own[:3], self._static, *own[3:]]
        if extra_headers:
            head.extend(encode_header_value(k, v).encode("ascii") for k, v in extra_headers.items())
        head.append(self._trailer)
        if signer is None:
            html_qp = (self._qp.encode_canonical_parts(html_parts)[0] if html_parts
                       else self._qp.encode(html))
            head += [self._text_head, self._qp.encode(text), self._html_head, html_qp,
                     self._close]
            return b"".join(head)
        text_qp, text_canonical = self._qp.encode_canonical(text)
        html_qp, html_canonical = (self._qp.encode_canonical_parts(html_parts) if html_parts
                                   else self._qp.encode_canonical(html))
        head += [self._text_head, text_qp, self._html_head, html_qp, self._close]
        # Every piece starts and ends at a line boundary, so canonical pieces join up.
        canonical = b"".join((self._text_head_canonical, text_canonical,
                              self._html_head_canonical, html_canonical,
                              self._close_canonical))
        return signer.sign(b"".join(head), canonical_body=end_canonical_body(canonical),
                           canonical_headers=None if extra_headers
                           else self._canonical(own, date_value, message_id))

    def _canonical(self, own: list[bytes], date_value: str, message_id: str,
                   ) -> dict[str, bytes] | None:
        """Canonical lines of all headers, the static ones from the cache; None when a
        name would occur twice (the signer then parses the message).

        The per-message headers are canonicalized from the pieces :meth:`build` just
        made (To, Subject, Date, Message-ID, List-Unsubscribe), not parsed back out of
        the joined bytes (~5 µs a message).
        """
        static = self._static_canonical
        if static is None or not static.keys().isdisjoint(_OWN_HEADERS):
            return None
        lines = {
            **static,
            "to": canonicalize_header_relaxed(b"To", own[0][3:-2]),
            "subject": canonicalize_header_relaxed(b"Subject", own[1][8:-2]),
            "date": canonicalize_header_relaxed(b"Date", date_value.encode("ascii")),
            "message-id": canonicalize_header_relaxed(b"Message-ID", message_id.encode("ascii")),
        }
        if len(own) > 3:  # List-Unsubscribe (maybe folded), then the fixed -Post line
            block = own[3]
            value = block[len(b"List-Unsubscribe:"):block.index(b"\r\nList-Unsubscribe-Post:")]
            lines["list-unsubscribe"] = canonicalize_header_relaxed(b"List-Unsubscribe", value)
            lines["list-unsubscribe-post"] = _POST_CANONICAL
        return lines


_OWN_HEADERS = frozenset({"to", "subject", "date", "message-id", "list-unsubscribe",
                          "list-unsubscribe-post"})
_POST_CANONICAL = canonicalize_header_relaxed(b"List-Unsubscribe-Post",
                                              b" List-Unsubscribe=One-Click")
