"""Fast MIME assembly and OpenSSL DKIM: checked with the stdlib parser and dkimpy."""

from __future__ import annotations

import base64
import binascii
import email
import hashlib
import re
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage

import dkim
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from dkim.canonicalization import Relaxed
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.engagement.tracking import message_id_for
from engine.message.dkim import (
    DkimSigner,
    canonicalize_body_relaxed,
    canonicalize_header_relaxed,
    canonicalize_lines_relaxed,
)
from engine.message.mime import MessageSkeleton, QuotedPrintableCache
from engine.message.render import compile_email, render_email
from engine.message.templating import sample_context

DOMAIN = "umkm.ttskab.go.id"
UNSUB = f"https://{DOMAIN}/u/AwAAAAAAAAAqc2lnbmF0dXJlLWJ5dGVz"
SUBJECT = "Maria, diskon 15% tenun ikat – TTS"
LONG_SUBJECT = ("Maria, diskon 15% tenun ikat – TTS: selendang, sarung dan selimut motif "
                "Amanuban, Amanatun dan Mollo hanya sampai 31 Desember 🎉")


_ED25519_KEY = ed25519.Ed25519PrivateKey.generate()


@pytest.fixture(scope="module")
def rendered() -> tuple[str, str]:
    result = render_email(compile_email("promotional", "x"), sample_context())
    return result.text, result.html


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _skeleton() -> MessageSkeleton:
    return MessageSkeleton(f"pemasaran@{DOMAIN}", "Dinas Koperasi & UMKM – TTS", DOMAIN,
                           unsubscribe_mailto=f"mailto:berhenti@{DOMAIN}?subject=berhenti")


def _build(skeleton: MessageSkeleton, text: str, html: str, *, subject: str = SUBJECT,
           name: str = "Maria Tefa – Soë", delivery: int = 42) -> bytes:
    return skeleton.build("maria@example.id", name, subject, text, html,
                          message_id_for(delivery, 7, DOMAIN), UNSUB)


def _parse(raw: bytes) -> EmailMessage:
    message = email.message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


@pytest.mark.parametrize("subject", [SUBJECT, LONG_SUBJECT, "Halo Maria, produk baru"])
def test_headers_decode_to_the_input(rendered: tuple[str, str], subject: str) -> None:
    raw = _build(_skeleton(), *rendered, subject=subject)
    message = _parse(raw)
    assert message["Subject"] == subject
    to = message["To"].addresses[0]
    assert (to.display_name, to.addr_spec) == ("Maria Tefa – Soë", "maria@example.id")
    sender = message["From"].addresses[0]
    assert (sender.display_name, sender.addr_spec) == (
        "Dinas Koperasi & UMKM – TTS", f"pemasaran@{DOMAIN}")
    assert message["MIME-Version"] == "1.0"
    assert message["Message-ID"] == message_id_for(42, 7, DOMAIN)
    assert message["Date"].datetime is not None
    assert message["List-Unsubscribe"] == f"<{UNSUB}>, <mailto:berhenti@{DOMAIN}?subject=berhenti>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert not message.defects


def test_both_parts_decode_to_the_input(rendered: tuple[str, str]) -> None:
    text = rendered[0] + "Terima kasih – Soë 🎉\n" + "x" * 300 + "\n.\nFrom here\ttab  \n"
    html = rendered[1]
    message = _parse(_build(_skeleton(), text, html))
    assert message.get_content_type() == "multipart/alternative"
    plain, rich = list(message.iter_parts())
    assert plain.get_content_type() == "text/plain" and rich.get_content_type() == "text/html"
    for part, original in ((plain, text), (rich, html)):
        assert part["Content-Transfer-Encoding"] == "quoted-printable"
        assert part.get_content_charset() == "utf-8"
        assert part.get_content().replace("\r\n", "\n") == original


def test_wire_format_is_crlf_with_short_lines(rendered: tuple[str, str]) -> None:
    raw = _build(_skeleton(), *rendered)
    assert b"\n" not in raw.replace(b"\r\n", b"") and b"\r" not in raw.replace(b"\r\n", b"")
    head, _, body = raw.partition(b"\r\n\r\n")
    assert all(len(line) <= 998 for line in head.split(b"\r\n"))
    # folded to the recommended 78 wherever a break is allowed (a URL cannot break)
    assert all(len(line) <= 78 for line in head.split(b"\r\n") if b"https://" not in line)
    assert all(len(line) <= 76 for line in body.split(b"\r\n"))  # QP limit (and <= 998)
    assert raw.isascii()


@given(st.lists(st.text(alphabet=st.sampled_from("....a =\u00eb"), min_size=60, max_size=300),
                max_size=6))
@settings(max_examples=200, deadline=None)
def test_no_line_of_the_body_starts_with_a_dot_and_it_still_decodes(lines: list[str]) -> None:
    """Issue 22: SMTP would have to double those dots (a copy of the whole message);
    quoted-printable writes them ``=2E`` instead, within its 76 characters."""
    text = "\n".join(lines) + "\n"
    raw = _build(_skeleton(), text, "<p>.x</p>\n." + text)
    _, _, body = raw.partition(b"\r\n\r\n")
    assert b"\r\n." not in body and not body.startswith(b".")
    assert all(len(line) <= 76 for line in body.split(b"\r\n"))
    plain, _rich = list(_parse(raw).iter_parts())
    assert plain.get_content().replace("\r\n", "\n") == text


@given(st.lists(st.text(alphabet=st.sampled_from("ab .=\t\n\r\u00eb "), max_size=160),
                max_size=12))
@settings(max_examples=300, deadline=None)
def test_encoding_the_chunks_decodes_to_their_text_with_its_canonical_form(
    parts: list[str],
) -> None:
    """Issue 22: the chunk path (static chunks encoded once, a line with several
    chunks joined by soft line breaks) decodes to the same text, keeps quoted-printable's
    rules, and gives the canonical form DKIM would compute from the bytes."""
    cache = QuotedPrintableCache(maxsize=8)
    text = "".join(parts).replace("\r\n", "\n").replace("\r", "\n")
    for _ in range(2):  # cold, then with every chunk cached
        encoded, canonical = cache.encode_canonical_parts(parts)
        lines = encoded.split(b"\r\n")
        assert all(len(line) <= 76 for line in lines)
        assert not any(line.startswith(b".") for line in lines)
        assert canonical == canonicalize_lines_relaxed(encoded)
        decoded = binascii.a2b_qp(encoded.replace(b"\r\n", b"\n")).decode("utf-8")
        assert decoded == text
        # the lines of several pieces come from a table: the same bytes as a cold cache
        assert (encoded, canonical) == QuotedPrintableCache().encode_canonical_parts(parts)


def test_a_rendered_email_encodes_the_same_by_chunks(rendered: tuple[str, str]) -> None:
    compiled = compile_email("promotional", "x")
    cache = QuotedPrintableCache()
    for name in ("Maria", "Yohanes"):
        result = render_email(compiled, {**sample_context(), "customer": {
            **sample_context()["customer"], "first_name": name}})
        assert "".join(result.html_parts) == result.html
        encoded, _canonical = cache.encode_canonical_parts(result.html_parts)
        assert binascii.a2b_qp(encoded.replace(b"\r\n", b"\n")).decode("utf-8") == \
            result.html.replace("\r\n", "\n")


def test_header_injection_through_a_name_is_impossible(rendered: tuple[str, str]) -> None:
    raw = _build(_skeleton(), *rendered, name="Maria\r\nBcc: semua@example.id",
                 subject="Halo\nBcc: semua@example.id")
    message = _parse(raw)
    assert message["Bcc"] is None
    assert message["Subject"] == "Halo Bcc: semua@example.id"


def test_ascii_names_with_specials_are_quoted(rendered: tuple[str, str]) -> None:
    message = _parse(_build(_skeleton(), *rendered, name='Tefa, Maria "Ina"'))
    assert message["To"].addresses[0].display_name == 'Tefa, Maria "Ina"'


def test_transactional_mail_has_no_one_click_headers(rendered: tuple[str, str]) -> None:
    raw = _skeleton().build("maria@example.id", None, "Pesanan INV-1", *rendered,
                            message_id_for(1, 1, DOMAIN))
    message = _parse(raw)
    assert message["List-Unsubscribe"] is None and message["List-Unsubscribe-Post"] is None
    assert message["To"] == "maria@example.id"


def test_message_id_is_stable_per_delivery(rendered: tuple[str, str]) -> None:
    assert message_id_for(42, 7, DOMAIN) == message_id_for(42, 7, DOMAIN)
    assert message_id_for(42, 7, DOMAIN) != message_id_for(43, 7, DOMAIN)
    assert message_id_for(42, 7, DOMAIN) != message_id_for(42, 8, DOMAIN)
    first = _parse(_build(_skeleton(), *rendered, delivery=42))["Message-ID"]
    retry = _parse(_build(_skeleton(), *rendered, delivery=42))["Message-ID"]  # new worker
    assert first == retry and first.endswith(f"@{DOMAIN}>")


def test_extra_headers_and_invalid_input(rendered: tuple[str, str]) -> None:
    raw = _skeleton().build("a@b.id", None, "S", *rendered, "<x@b.id>",
                            extra_headers={"X-UMKM-Kampanye": "Promo – Tenun"})
    assert _parse(raw)["X-UMKM-Kampanye"] == "Promo – Tenun"
    with pytest.raises(ValueError):
        _skeleton().build("a@b.id", None, "S", "t", "h", "<x@b.id>",
                          extra_headers={"Bad Name": "x"})
    with pytest.raises(ValueError):
        _skeleton().build("a@b.id\r\nBcc: c@d.id", None, "S", "t", "h", "<x@b.id>")
    with pytest.raises(ValueError):
        _skeleton().build("a@b.id", None, "S", "t", "h", "no-angle-brackets")


def _dnsfunc(signer: DkimSigner):  # type: ignore[no-untyped-def]
    record = signer.dns_txt_record().encode()

    def lookup(name: bytes, timeout: int = 5) -> bytes:
        assert name == f"umkm2026._domainkey.{DOMAIN}.".encode()
        return record

    return lookup


@pytest.mark.parametrize("algorithm", ["rsa-sha256", "ed25519-sha256"])
def test_dkim_signature_verifies_with_dkimpy(
    rendered: tuple[str, str], rsa_key: rsa.RSAPrivateKey, algorithm: str
) -> None:
    key = rsa_key if algorithm == "rsa-sha256" else ed25519.Ed25519PrivateKey.generate()
    signer = DkimSigner(DOMAIN, "umkm2026", key)
    signed = signer.sign(_build(_skeleton(), *rendered))
    assert dkim.verify(signed, dnsfunc=_dnsfunc(signer))
    header = _parse(signed)["DKIM-Signature"]
    tags = dict(part.strip().split("=", 1) for part in re.sub(r"\s+", "", header).split(";")
                if part.strip())
    assert tags["a"] == algorithm and tags["c"] == "relaxed/relaxed" and tags["d"] == DOMAIN
    signed_headers = tags["h"].split(":")
    for name in ("from", "to", "subject", "date", "message-id", "mime-version",
                 "content-type", "list-unsubscribe", "list-unsubscribe-post"):
        assert name in signed_headers
    signature_lines = signed.split(b"\r\nFrom:", 1)[0].split(b"\r\n")
    assert signature_lines[0].startswith(b"DKIM-Signature:")
    assert all(len(line) <= 78 for line in signature_lines)


def test_dkim_detects_tampering(rendered: tuple[str, str], rsa_key: rsa.RSAPrivateKey) -> None:
    signer = DkimSigner(DOMAIN, "umkm2026", rsa_key)
    signed = signer.sign(_build(_skeleton(), *rendered))
    lookup = _dnsfunc(signer)
    dropped = re.sub(rb"List-Unsubscribe-Post: [^\r]*\r\n", b"", signed)
    assert not dkim.verify(dropped, dnsfunc=lookup)
    added = signed.replace(b"\r\n\r\n", b"\r\nList-Unsubscribe-Post: x\r\n\r\n", 1)
    assert not dkim.verify(added, dnsfunc=lookup)  # oversigned: cannot be added either
    body_changed = signed.replace(b"Rp 350.000", b"Rp 1.000", 1)
    assert not dkim.verify(body_changed, dnsfunc=lookup)


def test_canonicalization_matches_dkimpy() -> None:
    bodies = [b"", b"\r\n\r\n", b"a  b\t c \r\n\r\n \r\n", b"x\t\r\ny   \r\nz",
              b"  lead\r\n\ttab\t\r\n", b"line\r\n" * 3 + b"\r\n" * 4]
    for body in bodies:
        assert canonicalize_body_relaxed(body) == Relaxed.canonicalize_body(body), body
    header = (b"Subject", b" =?utf-8?b?YQ==?=\r\n \t =?utf-8?b?Yg==?=  ")
    name, value = Relaxed.canonicalize_headers([header])[0]
    assert canonicalize_header_relaxed(*header) == name + b":" + value


def _tags(signed: bytes) -> dict[str, str]:
    header = _parse(signed)["DKIM-Signature"]
    return dict(part.strip().split("=", 1) for part in re.sub(r"\s+", "", header).split(";")
                if part.strip())


def test_build_signs_with_the_cached_canonical_lines(
    rendered: tuple[str, str], rsa_key: rsa.RSAPrivateKey
) -> None:
    """The campaign template as sent: same body hash as signing the built message."""
    signer = DkimSigner(DOMAIN, "umkm2026", rsa_key)
    date = datetime(2026, 11, 28, 9, 30, tzinfo=UTC)
    # Static headers canonicalized once per skeleton (issue 22), with and without the
    # optional ones; the second build reads the canonical lines from the cache.
    with_extras = MessageSkeleton(f"pemasaran@{DOMAIN}", "Dinas", DOMAIN,
                                  reply_to=f"balas@{DOMAIN}",
                                  headers={"Feedback-ID": "promo:umkm", "X-Kampanye": "a  b"})
    for skeleton, delivery in ((_skeleton(), 1), (_skeleton(), 2), (with_extras, 3)):
        text, html = rendered
        signed = skeleton.build("maria@example.id", "Maria", SUBJECT, text, html,
                                message_id_for(delivery, 7, DOMAIN), UNSUB, date=date,
                                signer=signer)
        assert dkim.verify(signed, dnsfunc=_dnsfunc(signer))
        unsigned = skeleton.build("maria@example.id", "Maria", SUBJECT, text, html,
                                  message_id_for(delivery, 7, DOMAIN), UNSUB, date=date)
        # byte-identical to signing the whole message (RSA PKCS#1 v1.5 is deterministic)
        assert signed == signer.sign(unsigned, timestamp=int(_tags(signed)["t"]))


_WHITESPACE_TEXT = st.lists(st.sampled_from(
    ["a", "  ", " ", "\t", "\n", "\r\n", "\r", ".", "=", "é", "<p  style='x'>", "x" * 80,
     "  \n", "\t\n", "\n\n\n"]), max_size=40).map("".join)


@settings(max_examples=60, deadline=None)
@given(text=_WHITESPACE_TEXT, html=_WHITESPACE_TEXT, cache_size=st.sampled_from([0, 3, 4096]))
def test_cached_canonical_body_equals_a_full_canonicalization(
    text: str, html: str, cache_size: int
) -> None:
    """Spaces, tabs, blank lines and long lines through the cache (also when it empties)."""
    skeleton = MessageSkeleton(f"pemasaran@{DOMAIN}", None, DOMAIN)
    skeleton._qp = QuotedPrintableCache(maxsize=cache_size)
    signer = DkimSigner(DOMAIN, "umkm2026", _ED25519_KEY)
    for _ in range(2):
        signed = skeleton.build("a@example.id", None, "S", text, html, "<x@example.id>",
                                signer=signer)
        body = signed.split(b"\r\n\r\n", 1)[1]
        expected = base64.b64encode(hashlib.sha256(Relaxed.canonicalize_body(body)).digest())
        assert _tags(signed)["bh"] == expected.decode()


def test_weak_or_wrong_keys_are_refused() -> None:
    with pytest.raises(ValueError):
        DkimSigner(DOMAIN, "s", rsa.generate_private_key(public_exponent=65537, key_size=512))
    with pytest.raises(ValueError):
        DkimSigner(DOMAIN, "s", ed25519.Ed25519PrivateKey.generate(), headers=("to",))


@given(st.text(alphabet=st.sampled_from(". a\u00eb\n"), max_size=120),
       st.text(alphabet=st.sampled_from(". a\u00eb"), max_size=120))
@settings(max_examples=150, deadline=None)
def test_no_line_of_a_built_message_starts_with_a_dot(body: str, header: str) -> None:
    """Issue 22: the SMTP channel trusts this (``no_leading_dots``) and does not search
    for lines to dot-stuff: headers (folded lines start with a space) and both parts."""
    skeleton = MessageSkeleton(f"pemasaran@{DOMAIN}", header or None, DOMAIN,
                               headers={"X-Note": header or "x"})
    raw = skeleton.build("maria@example.id", header, header, body, "<p>" + body,
                         message_id_for(1, 7, DOMAIN), UNSUB, extra_headers={"X-Extra": header})
    signed = DkimSigner(DOMAIN, "s", _ED25519_KEY).sign(raw)
    for message in (raw, signed):
        assert b"\r\n." not in message and not message.startswith(b".")


def test_a_header_name_starting_with_a_dot_is_refused() -> None:
    with pytest.raises(ValueError):
        MessageSkeleton(f"pemasaran@{DOMAIN}", None, DOMAIN, headers={".X-Note": "x"})
    with pytest.raises(ValueError):
        _skeleton().build("maria@example.id", None, "s", "t", "h", message_id_for(1, 7, DOMAIN),
                          extra_headers={".X": "x"})
    assert MessageSkeleton(f"pemasaran@{DOMAIN}", None, DOMAIN, headers={"X.Y": "1"})


def test_the_folded_tag_list_kept_for_a_second_signs_as_a_fresh_one(
    rendered: tuple[str, str],
) -> None:
    """Issue 22: the tag list is folded once per timestamp with a placeholder for
    ``bh=``; every signature must still be the one a fresh signer writes, and verify."""
    signer = DkimSigner(DOMAIN, "s2026", _ED25519_KEY)
    text, html = rendered
    public = _ED25519_KEY.public_key().public_bytes_raw()
    record = b"v=DKIM1; k=ed25519; p=" + base64.b64encode(public)
    for timestamp in (0, 7, 1_700_000_000, 1_700_000_000, 10**10, 7):
        for n in range(2):
            raw = _build(_skeleton(), text + "x" * n, html, delivery=n)
            fresh = DkimSigner(DOMAIN, "s2026", _ED25519_KEY)
            header = signer.signature_header(raw, timestamp=timestamp)
            assert header == fresh.signature_header(raw, timestamp=timestamp)
            assert f"t={timestamp};".encode() in header
            assert b"\x01" not in header
            if timestamp < 10**10:  # dkimpy refuses a signature from the future
                assert dkim.verify(header + raw, dnsfunc=lambda *_a, **_k: record)


@given(name=st.text(alphabet=st.sampled_from("ab  .\t\u00eb,\"<"), max_size=90),
       subject=st.text(alphabet=st.sampled_from("ab  .\t\u00eb=?"), max_size=200),
       unsubscribe=st.sampled_from([None, UNSUB, UNSUB + "x" * 90]))
@settings(max_examples=120, deadline=None)
def test_per_message_headers_canonicalize_as_parsed_back(
    name: str, subject: str, unsubscribe: str | None,
) -> None:
    """Issue 22: To, Subject, Date, Message-ID and List-Unsubscribe are canonicalized
    from the pieces build() made; the signature is the one of parsing the message."""
    signer = DkimSigner(DOMAIN, "umkm2026", _ED25519_KEY)
    skeleton = _skeleton()
    date = datetime(2026, 11, 28, 9, 30, tzinfo=UTC)
    args = ("maria@example.id", name, subject, "teks\n", "<p>html</p>\n",
            message_id_for(3, 7, DOMAIN), unsubscribe)
    signed = skeleton.build(*args, date=date, signer=signer)
    unsigned = skeleton.build(*args, date=date)
    assert signed == signer.sign(unsigned, timestamp=int(_tags(signed)["t"]))


@given(st.binary(max_size=90) | st.text(alphabet=st.sampled_from(". a=~\t\x7f\u00eb"),
                                        max_size=90).map(lambda text: text.encode("utf-8")))
@settings(max_examples=400, deadline=None)
def test_a_line_quoted_printable_leaves_alone_is_passed_as_it_is(line: bytes) -> None:
    """Issue 22: the shortcut for lines that encode to themselves gives the encoder's
    bytes (with a leading dot as ``=2E``) for every line."""
    from engine.message.mime import _no_leading_dots, _qp_line

    line = line.replace(b"\r", b"").replace(b"\n", b"")
    expected = binascii.b2a_qp(line, quotetabs=False, istext=True, header=False).replace(
        b"\n", b"\r\n")
    if expected[:1] == b"." or b"\r\n." in expected:
        expected = _no_leading_dots(expected)
    assert _qp_line(line) == expected
