"""The photo URL a social platform is given: absolute, public, ours, JPEG, the right shape.

Why a check before any call: Facebook, Instagram and TikTok fetch the photo themselves
from the URL we send (DESIGN §7). A site path (``/media/...``) or a loopback host is
unreachable for them; TikTok's ``PULL_FROM_URL`` only pulls from a domain verified with
TikTok (the installation's own, ``BASE_URL``) and refuses PNG; Instagram takes JPEG only
and an aspect ratio between 4:5 and 1.91:1, so a 3:4 phone photo is refused. Every
stored photo has normalised JPEG variants (:mod:`engine.media`): Instagram gets the
portrait one (1080x1350, 4:5), the other platforms the square one (1080x1080). A photo
that is not one of ours (an external URL kept from an old import) is refused here, so
the post fails with a reason the staff can act on instead of a platform's error code.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from urllib.parse import urlsplit

from engine.campaign.catalog import CatalogProduct
from engine.common.errors import InvalidInput
from engine.common.i18n import t
from engine.config import Settings
from engine.media.images import SIZES
from engine.media.store import URL_PREFIX

# The variant each platform is given: both are inside Instagram's 4:5 .. 1.91:1.
PLATFORM_SIZE = {"instagram": "portrait"}
DEFAULT_SIZE = "square"
_PATH = re.compile(re.escape(URL_PREFIX) + r"([0-9a-f]{64})/(" + "|".join(SIZES) + r")\.jpg")


class MediaUnfit(InvalidInput):
    """A post whose photo the platform would refuse: not attempted, failed for good."""

    def __init__(self, channel: str) -> None:
        super().__init__("social.media_unfit_post", channel=channel)


def _live(settings: Settings) -> bool:
    return settings.social_mode != "sandbox"


def _public_host(host: str) -> bool:
    """False for localhost and loopback / private / link-local addresses."""
    if host in ("localhost", "") or host.endswith(".localhost") or host.endswith(".local"):
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return True
    return address.is_global


def platform_media_url(image_url: str, platform: str, settings: Settings) -> str | None:
    """The URL to send ``platform`` for a product photo, or None when none is acceptable.

    ``image_url`` is what the product stores: a site path ``/media/<sha>/<size>.jpg`` or
    that path already made absolute on our own domain.
    """
    base = urlsplit(settings.base_url)
    parts = urlsplit(image_url)
    if parts.netloc and parts.netloc.lower() != base.netloc.lower():
        return None  # not hosted by this installation: not verified, not known to be JPEG
    match = _PATH.fullmatch(parts.path)
    if match is None:
        return None
    if _live(settings) and (base.scheme != "https" or not _public_host(base.hostname or "")):
        return None  # the platforms fetch over the public internet, https only
    size = PLATFORM_SIZE.get(platform, DEFAULT_SIZE)
    return f"{base.scheme}://{base.netloc}{URL_PREFIX}{match.group(1)}/{size}.jpg"


def media_problems(products: Sequence[CatalogProduct], platforms: Sequence[str],
                   settings: Settings) -> list[str]:
    """One line per platform naming the products whose photo it would refuse."""
    problems = []
    for platform in platforms:
        bad = [p.name for p in products
               if platform_media_url(p.image_url, platform, settings) is None]
        if bad:
            problems.append(t("social.media_unfit", channel=platform,
                              products=", ".join(bad), base=settings.base_url))
    return problems


def post_media_url(image_url: str, platform: str, settings: Settings) -> str:
    """:func:`platform_media_url`, or :class:`MediaUnfit` when there is none."""
    url = platform_media_url(image_url, platform, settings)
    if url is None:
        raise MediaUnfit(platform)
    return url
