"""What one TikTok post is, before and after the API: validated payload, creator
options, privacy choice, init request bodies and the final publish status.

Apart from :mod:`channels.tiktok` (the HTTP conversation, tokens, errors) because these
are pure values: they decide what may be posted without a single request, and the
tests check them without a server.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from channels.base import PermanentChannelError

SELF_ONLY = "SELF_ONLY"
PRIVACY_LEVELS = (
    "PUBLIC_TO_EVERYONE",
    "FOLLOWER_OF_CREATOR",
    "MUTUAL_FOLLOW_FRIENDS",
    SELF_ONLY,
)
MAX_CAPTION = 2200  # video title / photo description, in characters
MAX_PHOTO_TITLE = 90
UNAUDITED_TEXT = (
    "Aplikasi TikTok belum lolos audit, sehingga hanya boleh memposting secara privat "
    "(SELF_ONLY) ke akun privat. Jadikan akun TikTok ini privat atau ajukan audit aplikasi."
)


@dataclass(frozen=True, slots=True)
class TikTokPost:
    """The validated post of one delivery, ready for an init request."""

    kind: Literal["video", "photo"]
    caption: str
    media_urls: tuple[str, ...]
    title: str = ""
    duration_sec: float | None = None
    disable_comment: bool = False
    disable_duet: bool = False
    disable_stitch: bool = False
    attribution: dict[str, Any] = field(default_factory=dict)
    privacy_level: str | None = None  # chosen per campaign (``channels.tiktok.privacy``)
    consent: bool = False  # the staff's explicit consent to post publicly
    video_path: str = ""  # a local MP4 sent by FILE_UPLOAD (channels.tiktok_upload)

    @classmethod
    def from_payload(cls, payload: object) -> TikTokPost:
        """Validate one delivery's payload before any call: a refusal costs no API quota."""
        if not isinstance(payload, Mapping):
            raise PermanentChannelError("payload TikTok harus berupa dict")
        media_type = payload.get("media_type")
        urls = _media_urls(payload)
        video_path = str(payload.get("video_path") or "") if media_type == "video" else ""
        if not urls and not video_path:
            raise PermanentChannelError("TikTok membutuhkan foto atau video (media_url kosong)")
        if media_type not in ("image", "video"):
            raise PermanentChannelError(
                f"TikTok hanya memuat foto atau video, bukan {media_type!r}"
            )
        caption = str(payload.get("caption") or "")
        if len(caption) > MAX_CAPTION:
            raise PermanentChannelError(
                f"keterangan TikTok lebih dari {MAX_CAPTION} karakter ({len(caption)})"
            )
        duration = payload.get("duration_sec")
        return cls(
            kind="video" if media_type == "video" else "photo",
            caption=caption,
            media_urls=urls,
            title=str(payload.get("title") or _first_line(caption))[:MAX_PHOTO_TITLE],
            duration_sec=float(duration) if duration is not None else None,
            disable_comment=bool(payload.get("disable_comment")),
            disable_duet=bool(payload.get("disable_duet")),
            disable_stitch=bool(payload.get("disable_stitch")),
            attribution={k: payload.get(k) for k in ("product_id", "business_id")},
            privacy_level=str(payload["privacy_level"]) if payload.get("privacy_level") else None,
            consent=payload.get("consent") is True,
            video_path=video_path,
        )


@dataclass(frozen=True, slots=True)
class CreatorInfo:
    """What ``creator_info/query`` allows for the next post."""

    privacy_level_options: tuple[str, ...]
    comment_disabled: bool = False
    duet_disabled: bool = False
    stitch_disabled: bool = False
    max_video_post_duration_sec: int | None = None
    username: str = ""

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> CreatorInfo:
        options = data.get("privacy_level_options") or ()
        max_duration = data.get("max_video_post_duration_sec")
        return cls(
            privacy_level_options=tuple(str(o) for o in options),
            comment_disabled=bool(data.get("comment_disabled")),
            duet_disabled=bool(data.get("duet_disabled")),
            stitch_disabled=bool(data.get("stitch_disabled")),
            max_video_post_duration_sec=int(max_duration) if max_duration else None,
            username=str(data.get("creator_username") or ""),
        )


@dataclass(frozen=True, slots=True)
class PublishOutcome:
    """The terminal ``status/fetch`` answer for one publish_id."""

    publish_id: str
    status: str
    post_ids: tuple[str, ...] = ()
    fail_reason: str = ""
    privacy_level: str | None = None
    resumed: bool = False
    raw: dict[str, Any] = field(default_factory=dict)


def choose_privacy_level(options: Sequence[str], *, audited: bool,
                         requested: str | None = None, consent: bool = False) -> str:
    """The privacy level of a post, only ever one of the creator's current options.

    TikTok's Direct Post rules: an unaudited app posts ``SELF_ONLY`` and nothing else;
    an audited app must let the user pick the level for each post, with **no default**,
    and must have the user's explicit consent. The campaign's ``channels.tiktok``
    carries that choice (``privacy``, ``consent``); nothing is guessed here.
    """
    if not audited:
        if requested not in (None, SELF_ONLY):
            raise PermanentChannelError(UNAUDITED_TEXT, raw={"requested": requested})
        if SELF_ONLY in options:
            return SELF_ONLY
        raise PermanentChannelError(UNAUDITED_TEXT, raw={"privacy_level_options": list(options)})
    if requested is None:
        raise PermanentChannelError(
            "TikTok: pilih privasi postingan di kampanye (channels.tiktok.privacy); "
            "tidak ada pilihan bawaan", raw={"privacy_level_options": list(options)})
    if not consent:
        raise PermanentChannelError(
            "TikTok: persetujuan eksplisit untuk memposting belum diberikan "
            "(channels.tiktok.consent: true)", raw={"requested": requested})
    if requested not in options:
        raise PermanentChannelError(
            f"TikTok: privasi {requested} tidak ditawarkan akun ini (pilihan: "
            f"{', '.join(options) or '-'})", raw={"privacy_level_options": list(options)})
    return requested


def _media_urls(payload: Mapping[str, Any]) -> tuple[str, ...]:
    urls = payload.get("media_urls")
    if isinstance(urls, list | tuple) and urls:
        return tuple(str(u) for u in urls if u)
    url = payload.get("media_url")
    return (str(url),) if url else ()


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""


def check_duration(post: TikTokPost, creator: CreatorInfo) -> None:
    limit = creator.max_video_post_duration_sec
    if post.kind == "video" and limit and post.duration_sec and post.duration_sec > limit:
        raise PermanentChannelError(
            f"video {post.duration_sec:.0f} detik melebihi batas akun TikTok ini ({limit} detik)",
            raw={"max_video_post_duration_sec": limit, "duration_sec": post.duration_sec},
        )


def video_init_body(post: TikTokPost, creator: CreatorInfo, level: str,
                    source_info: dict[str, Any] | None = None) -> dict[str, Any]:
    """``source_info`` is the FILE_UPLOAD chunk plan; without it TikTok pulls the URL."""
    return {
        "post_info": {
            "title": post.caption,
            "privacy_level": level,
            "disable_comment": post.disable_comment or creator.comment_disabled,
            "disable_duet": post.disable_duet or creator.duet_disabled,
            "disable_stitch": post.disable_stitch or creator.stitch_disabled,
        },
        "source_info": source_info or {"source": "PULL_FROM_URL",
                                       "video_url": post.media_urls[0]},
    }


def photo_init_body(post: TikTokPost, creator: CreatorInfo, level: str) -> dict[str, Any]:
    return {
        "media_type": "PHOTO",
        "post_mode": "DIRECT_POST",
        "post_info": {
            "title": post.title,
            "description": post.caption,
            "privacy_level": level,
            "disable_comment": post.disable_comment or creator.comment_disabled,
            "auto_add_music": True,
        },
        "source_info": {
            "source": "PULL_FROM_URL",
            "photo_images": list(post.media_urls),
            "photo_cover_index": 0,
        },
    }
