"""Marketplace links of a product (Perbup TTS 17/2025 Pasal 7 ayat 4: lokapasar).

The owner types, one per line, the pages where the product is also sold. Why so strict:
every stored URL becomes a redirect target of the public showcase (``/m/<id>``) and a
link in campaign mail, so it must never lead to a phishing page dressed as a shop, a
``javascript:`` URL or a machine inside the Dinas network. The rules:

* a known marketplace host (Shopee, Tokopedia, TikTok Shop, Bukalapak, Blibli, Lazada),
  over http or https;
* any other shop only over https, with a public domain name or a global IP address:
  no ``localhost``, ``.local``/``.internal`` names, private, loopback or link-local
  addresses;
* never a user name or password before the host, a port other than 80/443, spaces,
  backslashes or control characters; at most :data:`MAX_URL` characters and
  :data:`MAX_LINKS` links per product.

A refusal is :class:`MarketplaceLinkError`, naming the line and the reason in Indonesian.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit, urlunsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.models import Product, ProductLink
from engine.umkm.businesses import InvalidDataError

MAX_LINKS = 5
MAX_URL = 500
OTHER = "other"
_SHOWN = 80

#: (host suffix, marketplace key, label). A host matches itself and its subdomains.
KNOWN_HOSTS: tuple[tuple[str, str, str], ...] = (
    ("shopee.co.id", "shopee", "Shopee"),
    ("tokopedia.com", "tokopedia", "Tokopedia"),
    ("tokopedia.link", "tokopedia", "Tokopedia"),
    ("shop.tiktok.com", "tiktok", "TikTok Shop"),
    ("bukalapak.com", "bukalapak", "Bukalapak"),
    ("blibli.com", "blibli", "Blibli"),
    ("lazada.co.id", "lazada", "Lazada"),
)
_TIKTOK_SHOP_PATHS = ("/shop", "/view/product")
_LOCAL_SUFFIXES = (".local", ".localhost", ".internal", ".lan", ".home", ".corp", ".test",
                   ".invalid", ".example", ".onion")
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_BAD_CHARS = re.compile(r"[\s\\\x00-\x1f\x7f]")


class MarketplaceLinkError(InvalidDataError):
    """A marketplace link the owner must correct; the text names the line and why."""


@dataclass(frozen=True)
class ParsedLink:
    """One accepted link: which marketplace, the URL as stored, the label shown."""

    marketplace: str
    url: str
    label: str


def _shown(value: str) -> str:
    return value if len(value) <= _SHOWN else value[:_SHOWN] + "…"


def _known(host: str, path: str) -> tuple[str, str] | None:
    for suffix, key, label in KNOWN_HOSTS:
        if host == suffix or host.endswith("." + suffix):
            return key, label
    if (host == "tiktok.com" or host.endswith(".tiktok.com")) and \
            path.lower().startswith(_TIKTOK_SHOP_PATHS):
        return "tiktok", "TikTok Shop"
    return None


def _public_host(host: str) -> bool:
    """A global IP address, or a dotted DNS name outside the local/reserved suffixes."""
    try:
        return ipaddress.ip_address(host.strip("[]")).is_global
    except ValueError:
        pass
    labels = host.split(".")
    return (len(labels) >= 2 and all(_LABEL.match(label) for label in labels)
            and labels[-1].isalpha() and not host.endswith(_LOCAL_SUFFIXES))


def _split(raw: str, line: int) -> SplitResult:
    if len(raw) > MAX_URL:
        raise MarketplaceLinkError("market.err.too_long", line=line, max=MAX_URL)
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError:
        raise MarketplaceLinkError("market.err.malformed", line=line,
                                   value=_shown(raw)) from None
    if _BAD_CHARS.search(raw) or not parts.hostname:
        raise MarketplaceLinkError("market.err.malformed", line=line, value=_shown(raw))
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise MarketplaceLinkError("market.err.userinfo", line=line)
    if port is not None and port not in (80, 443):
        raise MarketplaceLinkError("market.err.port", line=line, port=port)
    return parts


def check_url(raw: str, line: int = 1) -> ParsedLink:
    """The link as it will be stored, or :class:`MarketplaceLinkError` saying why not."""
    value = raw.strip()
    scheme = value.split(":", 1)[0].lower() if ":" in value else ""
    if scheme not in ("http", "https"):
        raise MarketplaceLinkError("market.err.scheme", line=line, value=_shown(value))
    parts = _split(value, line)
    host = (parts.hostname or "").lower().rstrip(".")
    url = urlunsplit((scheme, parts.netloc.lower(), parts.path, parts.query, parts.fragment))
    known = _known(host, parts.path)
    if known is not None:
        return ParsedLink(known[0], url, known[1])
    if not _public_host(host):
        raise MarketplaceLinkError("market.err.private", line=line, host=_shown(host))
    if scheme != "https":
        raise MarketplaceLinkError("market.err.host", line=line, host=_shown(host))
    return ParsedLink(OTHER, url, host.removeprefix("www."))


def parse_links(text: str) -> list[ParsedLink]:
    """One link per non-empty line, duplicates dropped, at most :data:`MAX_LINKS`."""
    found: list[ParsedLink] = []
    for number, line in enumerate((text or "").splitlines(), start=1):
        if line.strip():
            link = check_url(line, number)
            if link.url not in {f.url for f in found}:
                found.append(link)
    if len(found) > MAX_LINKS:
        raise MarketplaceLinkError("market.err.too_many", max=MAX_LINKS, count=len(found))
    return found


def links_of(session: Session, product_id: int) -> list[ProductLink]:
    return list(session.scalars(select(ProductLink).where(ProductLink.product_id == product_id)
                                .order_by(ProductLink.position, ProductLink.id)))


def form_text(session: Session, product: Product | None) -> str:
    """The textarea's content: the stored links, one per line."""
    return "\n".join(link.url for link in links_of(session, product.id)) if product else ""


def save_links(session: Session, product: Product, text: str) -> list[ProductLink]:
    """Replace the product's links with those in ``text``; an unchanged URL keeps its id
    (so a showcase link already shared keeps working)."""
    wanted = parse_links(text)
    existing = {link.url: link for link in links_of(session, product.id)}
    kept: list[ProductLink] = []
    for position, parsed in enumerate(wanted):
        row = existing.pop(parsed.url, None) or ProductLink(product_id=product.id,
                                                            url=parsed.url)
        row.marketplace, row.position = parsed.marketplace, position
        session.add(row)
        kept.append(row)
    for stale in existing.values():
        session.delete(stale)
    session.flush()
    return kept


def label_of(link: ProductLink) -> str:
    """``Shopee`` for a known marketplace, the shop's host for any other."""
    return check_url(link.url).label


def safe_link(session: Session, link_id: int) -> ProductLink | None:
    """The stored link, only if its URL still passes today's rules (else ``None``)."""
    link = session.get(ProductLink, link_id)
    if link is None:
        return None
    try:
        check_url(link.url)
    except MarketplaceLinkError:
        return None
    return link


def links_by_product(session: Session,
                     product_ids: Iterable[int]) -> dict[int, tuple[tuple[str, str], ...]]:
    """``{product id: ((label, url), ...)}`` for catalogues and mail (one query)."""
    ids = list(product_ids)
    found: dict[int, list[tuple[str, str]]] = {}
    if not ids:
        return {}
    rows: Sequence[ProductLink] = list(session.scalars(
        select(ProductLink).where(ProductLink.product_id.in_(ids))
        .order_by(ProductLink.product_id, ProductLink.position, ProductLink.id)))
    for row in rows:
        if safe := _label_or_none(row):
            found.setdefault(row.product_id, []).append((safe, row.url))
    return {key: tuple(value) for key, value in found.items()}


def _label_or_none(link: ProductLink) -> str | None:
    try:
        return label_of(link)
    except MarketplaceLinkError:
        return None


def shown_links(session: Session, product_id: int) -> list[tuple[int, str]]:
    """``(link id, label)`` of the links a product page may show (valid ones only)."""
    return [(link.id, label) for link in links_of(session, product_id)
            if (label := _label_or_none(link))]
