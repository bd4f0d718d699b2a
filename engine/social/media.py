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

A TikTok campaign may carry a video instead (``channels.tiktok.video``): an MP4 in the
media folder's ``videos/``, sent with FILE_UPLOAD (:mod:`channels.tiktok_upload`), so no
photo is needed there. ``umkm campaign validate`` reports each problem at the line of
the channel (or its ``video:``) in the YAML.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

from channels.tiktok_upload import MAX_VIDEO_BYTES, is_mp4
from engine.campaign.catalog import CatalogProduct
from engine.campaign.schema import CampaignSpec, TikTokChannel
from engine.common.errors import InvalidInput
from engine.common.i18n import t
from engine.config import Settings
from engine.media.keys import URL_PREFIX
from engine.media.sizes import SIZES

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


Located = tuple[tuple[str, ...], str]  # (path of the YAML key, message)


def campaign_video(spec: CampaignSpec) -> str | None:
    """The campaign's TikTok video name (``channels.tiktok.video``), if any."""
    config = spec.channels.tiktok
    return config.video if isinstance(config, TikTokChannel) else None


def video_path(name: str, settings: Settings) -> Path:
    return settings.media_root / "videos" / name


def video_problem(name: str, settings: Settings) -> str | None:
    """Why the campaign's video cannot be uploaded to TikTok, or None."""
    path = video_path(name, settings)
    try:
        with path.open("rb") as handle:
            head = handle.read(12)
        size = path.stat().st_size
    except OSError:
        return t("social.tiktok_video_missing", video=name, folder=str(path.parent))
    if not is_mp4(head) or not 0 < size <= MAX_VIDEO_BYTES:
        return t("social.tiktok_video_unfit", video=name)
    return None


def media_problems(spec: CampaignSpec, products: Sequence[CatalogProduct],
                   platforms: Sequence[str], settings: Settings) -> list[Located]:
    """Per channel, where in the YAML: the products whose photo the platform would
    refuse, named; for TikTok with a video, that video's problem instead."""
    problems: list[Located] = []
    video = campaign_video(spec)
    for platform in platforms:
        if platform == "tiktok" and video is not None:
            problem = video_problem(video, settings)
            if problem:
                problems.append((("channels", "tiktok", "video"), problem))
            continue
        bad = [p.name for p in products
               if platform_media_url(p.image_url, platform, settings) is None]
        if bad:
            problems.append((("channels", platform), t(
                "social.media_unfit", channel=platform, products=", ".join(bad),
                base=settings.base_url)))
    return problems


def post_media_url(image_url: str, platform: str, settings: Settings) -> str:
    """:func:`platform_media_url`, or :class:`MediaUnfit` when there is none."""
    url = platform_media_url(image_url, platform, settings)
    if url is None:
        raise MediaUnfit(platform)
    return url
