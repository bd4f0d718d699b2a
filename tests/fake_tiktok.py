"""A fake TikTok Content Posting API: a real HTTP server on loopback for the tests.

It implements the documented flows and error shapes (TikTok for Developers, API v2):
``creator_info/query`` with privacy options, ``video/init`` and ``content/init``
(PULL_FROM_URL) returning a ``publish_id``, ``video/init`` with FILE_UPLOAD returning an
``upload_url`` that takes the chunks by ``PUT`` and refuses what TikTok's Media Transfer
Guide forbids (sizes, counts, ``Content-Range``, order, MIME type; a video that is not
MP4 fails with ``file_format_check_failed``; the status stays PROCESSING_UPLOAD until
every chunk arrived), ``status/fetch`` walking a status sequence
(PROCESSING_DOWNLOAD -> PUBLISH_COMPLETE, or FAILED with ``fail_reason``),
``video/query`` counts, and ``oauth/token`` refresh with **rotation** (the refresh token
used is invalidated, so only the newest one works). Errors are
``{"data": {}, "error": {"code", "message", "log_id"}}`` with the documented HTTP status.

Usage::

    def test_x(fake_tiktok):
        access, refresh = fake_tiktok.issue_tokens()
        fake_tiktok.creator["privacy_level_options"] = ["SELF_ONLY"]
        fake_tiktok.next_publish(["PROCESSING_DOWNLOAD", "FAILED"], fail_reason="video_pull_failed")
        fake_tiktok.enqueue(VIDEO_INIT, fake_tiktok.error("rate_limit_exceeded"))
        fake_tiktok.expire(access)                  # next call answers access_token_invalid
        ... TikTokChannel(..., base_url=fake_tiktok.url) ...
        assert fake_tiktok.count(VIDEO_INIT) == 1
"""

from __future__ import annotations

import itertools
import re
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.fake_http import FakeHTTPServer, Recorded, Reply
from tests.fake_media import fetch

CREATOR_INFO = "/v2/post/publish/creator_info/query/"
VIDEO_INIT = "/v2/post/publish/video/init/"
CONTENT_INIT = "/v2/post/publish/content/init/"
STATUS_FETCH = "/v2/post/publish/status/fetch/"
OAUTH_TOKEN = "/v2/oauth/token/"
VIDEO_QUERY = "/v2/video/query/"
UPLOAD = "/upload/video/"

MB = 1024 * 1024

CLIENT_KEY = "fake-client-key"
CLIENT_SECRET = "fake-client-secret"

# Documented HTTP status of each error code (API v2 error handling + Direct Post docs).
ERROR_STATUS: dict[str, int] = {
    "access_token_invalid": 401,
    "scope_not_authorized": 401,
    "scope_permission_missed": 401,
    "invalid_params": 400,
    "privacy_level_option_mismatch": 400,
    "rate_limit_exceeded": 429,
    "spam_risk_too_many_posts": 403,
    "spam_risk_user_banned_from_posting": 403,
    "reached_active_user_cap": 403,
    "unaudited_client_can_only_post_to_private_accounts": 403,
    "url_ownership_unverified": 403,
    "file_format_check_failed": 400,
    "internal_error": 500,
}


@dataclass
class Publish:
    """One post TikTok is processing."""

    publish_id: str
    kind: str
    privacy_level: str
    body: dict[str, Any]
    statuses: deque[str]
    fail_reason: str = ""
    video_id: str = ""
    moderation_polls: int = 0  # PUBLISH_COMPLETE answers still without a public id
    upload: Upload | None = None  # FILE_UPLOAD: the chunks TikTok still waits for


@dataclass
class Upload:
    """One FILE_UPLOAD in progress, as announced by its init."""

    token: str
    video_size: int
    chunk_size: int
    total_chunk_count: int
    received: int = 0  # bytes, in order
    chunks: int = 0
    head: bytes = b""

    @property
    def complete(self) -> bool:
        return self.received == self.video_size

    def expected_length(self) -> int:
        """The final chunk takes the trailing bytes; every other is ``chunk_size``."""
        final = self.chunks == self.total_chunk_count - 1
        return self.video_size - self.received if final else self.chunk_size


def chunk_rule_problem(video_size: Any, chunk_size: Any, count: Any) -> str | None:
    """Why TikTok refuses these FILE_UPLOAD init numbers (Media Transfer Guide)."""
    if not all(isinstance(v, int) and v > 0 for v in (video_size, chunk_size, count)):
        return "video_size, chunk_size and total_chunk_count are required positive integers"
    if video_size < 5 * MB:
        if (chunk_size, count) != (video_size, 1):
            return "a video under 5 MB must be uploaded whole"
        return None
    if not 5 * MB <= chunk_size <= 64 * MB:
        return "each chunk must be at least 5 MB and at most 64 MB"
    if count != video_size // chunk_size:
        return "total_chunk_count must equal video_size / chunk_size rounded down"
    if not 1 <= count <= 1000:
        return "between 1 and 1000 chunks"
    if video_size > 64 * MB and count < 2:
        return "a video over 64 MB must be uploaded in several chunks"
    if video_size - (count - 1) * chunk_size > 128 * MB:
        return "the final chunk may be at most 128 MB"
    return None


@dataclass
class FakeTikTok(FakeHTTPServer):
    """The fake API's state; tests change it directly between calls."""

    audited: bool = False
    creator: dict[str, Any] = field(default_factory=lambda: {
        "creator_avatar_url": "https://p16.example/avatar.jpg",
        "creator_username": "umkm_tts",
        "creator_nickname": "UMKM TTS",
        "privacy_level_options": ["PUBLIC_TO_EVERYONE", "MUTUAL_FOLLOW_FRIENDS", "SELF_ONLY"],
        "comment_disabled": False,
        "duet_disabled": False,
        "stitch_disabled": False,
        "max_video_post_duration_sec": 600,
    })
    access_tokens: set[str] = field(default_factory=set)
    refresh_tokens: set[str] = field(default_factory=set)
    used_refresh_tokens: list[str] = field(default_factory=list)
    publishes: dict[str, Publish] = field(default_factory=dict)
    videos: dict[str, dict[str, Any]] = field(default_factory=dict)
    default_statuses: tuple[str, ...] = ("PROCESSING_DOWNLOAD", "PUBLISH_COMPLETE")
    # Public host -> loopback server of the photos (tests.fake_media); None: not declared.
    media_hosts: dict[str, str] | None = None
    # Domains verified in the TikTok developer portal; None: the declared media hosts.
    verified_domains: set[str] | None = None
    # How many status polls a public post stays in moderation (no public id yet).
    moderation_polls: int = 0

    def __post_init__(self) -> None:
        FakeHTTPServer.__init__(self)
        self._ids = itertools.count(1)
        self._scripts: deque[tuple[list[str], str]] = deque()

    # -- test helpers -------------------------------------------------------------------
    def issue_tokens(self) -> tuple[str, str]:
        """A fresh valid (access_token, refresh_token) pair, as after OAuth consent."""
        n = next(self._ids)
        access, refresh = f"act.fake{n}", f"rft.fake{n}"
        self.access_tokens.add(access)
        self.refresh_tokens.add(refresh)
        return access, refresh

    def expire(self, access_token: str) -> None:
        self.access_tokens.discard(access_token)

    def next_publish(self, statuses: Sequence[str], fail_reason: str = "") -> None:
        """The status sequence ``status/fetch`` walks for the next init (FIFO)."""
        self._scripts.append((list(statuses), fail_reason))

    @staticmethod
    def error(code: str, message: str = "", status: int | None = None,
              headers: dict[str, str] | None = None) -> Reply:
        return Reply(
            status or ERROR_STATUS.get(code, 400),
            {"data": {}, "error": {"code": code, "message": message or code,
                                   "log_id": "202601010000000000FAKE"}},
            headers or {},
        )

    # -- the API ------------------------------------------------------------------------
    def handle(self, request: Recorded) -> Reply:
        if request.path == OAUTH_TOKEN:
            return self._oauth(request)
        if request.path == UPLOAD:  # authorised by the upload_url itself, not a bearer
            return self._upload(request)
        if request.bearer not in self.access_tokens:
            return self.error("access_token_invalid",
                              "The access token is invalid or not found in the request.")
        handler = {
            CREATOR_INFO: self._creator_info,
            VIDEO_INIT: self._video_init,
            CONTENT_INIT: self._content_init,
            STATUS_FETCH: self._status,
            VIDEO_QUERY: self._video_query,
        }.get(request.path)
        if handler is None:
            return Reply(404, {"error": {"code": "not_found", "message": request.path}})
        return handler(request)

    @staticmethod
    def _ok(data: dict[str, Any]) -> Reply:
        return Reply(200, {"data": data, "error": {"code": "ok", "message": "",
                                                   "log_id": "202601010000000000FAKE"}})

    def _oauth(self, request: Recorded) -> Reply:
        form = request.form()
        if form.get("client_key") != CLIENT_KEY or form.get("client_secret") != CLIENT_SECRET:
            return Reply(401, {"error": "invalid_client",
                               "error_description": "Client key or secret is incorrect.",
                               "log_id": "FAKE"})
        token = form.get("refresh_token", "")
        with self._lock:  # like TikTok, a refresh token is spent once even by racing calls
            valid = form.get("grant_type") == "refresh_token" and token in self.refresh_tokens
            if valid:
                self.refresh_tokens.discard(token)  # rotation: the used token stops working
                self.used_refresh_tokens.append(token)
                access, refresh = self.issue_tokens()
        if not valid:
            return Reply(400, {"error": "invalid_grant",
                               "error_description": "Refresh token is invalid or expired.",
                               "log_id": "FAKE"})
        return Reply(200, {
            "access_token": access, "expires_in": 86400, "open_id": "fake-open-id",
            "refresh_expires_in": 31536000, "refresh_token": refresh,
            "scope": "video.publish,video.list", "token_type": "Bearer",
        })

    def _creator_info(self, request: Recorded) -> Reply:
        return self._ok(dict(self.creator))

    def _check_post_info(self, info: dict[str, Any]) -> Reply | None:
        level = info.get("privacy_level")
        if level not in self.creator["privacy_level_options"]:
            return self.error("privacy_level_option_mismatch",
                              "privacy_level is not one of the creator's options")
        if not self.audited and level != "SELF_ONLY":
            return self.error("unaudited_client_can_only_post_to_private_accounts",
                              "Unaudited clients can only post to private accounts")
        for flag in ("comment", "duet", "stitch"):
            if self.creator[f"{flag}_disabled"] and f"disable_{flag}" in info \
                    and not info[f"disable_{flag}"]:
                return self.error("invalid_params", f"{flag} is disabled for this creator")
        return None

    def _video_init(self, request: Recorded) -> Reply:
        body = request.json() or {}
        info, source = body.get("post_info") or {}, body.get("source_info") or {}
        problem = self._check_post_info(info)
        if problem is not None:
            return problem
        if source.get("source") == "FILE_UPLOAD":
            return self._file_upload_init(source, info["privacy_level"], body)
        if source.get("source") != "PULL_FROM_URL" or not source.get("video_url"):
            return self.error("invalid_params", "source_info must be PULL_FROM_URL with video_url")
        return self._ok({"publish_id": self._new_publish("video", info["privacy_level"], body)})

    def _file_upload_init(self, source: dict[str, Any], level: str,
                          body: dict[str, Any]) -> Reply:
        size, chunk, count = (source.get(k) for k in
                              ("video_size", "chunk_size", "total_chunk_count"))
        problem = chunk_rule_problem(size, chunk, count)
        if problem is not None:
            return self.error("invalid_params", problem)
        publish_id = self._new_publish("video", level, body)
        token = f"upload-token-{next(self._ids)}"
        self.publishes[publish_id].upload = Upload(token, int(str(size)), int(str(chunk)),
                                                   int(str(count)))
        upload_url = f"{self.url}{UPLOAD}?upload_id={publish_id}&upload_token={token}"
        return self._ok({"publish_id": publish_id, "upload_url": upload_url})

    def _upload(self, request: Recorded) -> Reply:
        """One ``PUT`` of a chunk: 206 while chunks are missing, 201 for the last one."""
        publish = self.publishes.get((request.query.get("upload_id") or [""])[0])
        token = (request.query.get("upload_token") or [""])[0]
        upload = publish.upload if publish else None
        if request.method != "PUT" or upload is None or upload.token != token:
            return Reply(404, {"error": {"code": "not_found", "message": "unknown upload_url"}})
        if request.headers.get("content-type") != "video/mp4":
            return Reply(400, {"error": {"code": "invalid_params",
                                         "message": "Content-Type must be video/mp4"}})
        expected = (upload.received, upload.received + upload.expected_length() - 1,
                    upload.video_size)
        if upload.complete or _content_range(request) != expected \
                or len(request.body) != upload.expected_length():
            return Reply(416, {"error": {"code": "range_not_satisfiable",
                                         "message": f"expected bytes {expected[0]}-"
                                                    f"{expected[1]}/{expected[2]}"}})
        upload.head = upload.head or request.body[:12]
        upload.received += len(request.body)
        upload.chunks += 1
        if not upload.complete:
            return Reply(206, {})
        assert publish is not None
        if upload.head[4:8] != b"ftyp" or upload.head[8:12] == b"qt  ":
            publish.statuses = deque(["FAILED"])
            publish.fail_reason = "file_format_check_failed"
        return Reply(201, {})

    def _content_init(self, request: Recorded) -> Reply:
        body = request.json() or {}
        info, source = body.get("post_info") or {}, body.get("source_info") or {}
        if body.get("media_type") != "PHOTO" or body.get("post_mode") != "DIRECT_POST":
            return self.error("invalid_params", "media_type PHOTO and post_mode DIRECT_POST")
        problem = self._check_post_info(info)
        if problem is not None:
            return problem
        images = source.get("photo_images")
        cover = source.get("photo_cover_index")
        if (source.get("source") != "PULL_FROM_URL" or not isinstance(images, list)
                or not images or not isinstance(cover, int) or not 0 <= cover < len(images)):
            return self.error("invalid_params", "bad source_info for PHOTO")
        if len(info.get("title") or "") > 90:
            return self.error("invalid_params", "title longer than 90 characters")
        return self._pull_photos(images, info["privacy_level"], body)

    def _pull_photos(self, images: list[Any], level: str, body: dict[str, Any]) -> Reply:
        """PULL_FROM_URL as documented: only from a verified domain, JPEG or WEBP only."""
        verified = self.verified_domains if self.verified_domains is not None else (
            set(self.media_hosts) if self.media_hosts is not None else None)
        formats = []
        for url in images:
            fetched = fetch(str(url), self.media_hosts)
            if fetched.problem in ("relative", "private"):
                return self.error("invalid_params", f"photo_images must be public URLs: {url}")
            host = str(url).split("/")[2]
            if (verified is not None and host not in verified) or fetched.problem:
                return self.error("url_ownership_unverified",
                                  "Please verify the ownership of the domain or URL prefix")
            formats.append(fetched.format)
        publish_id = self._new_publish("photo", level, body)
        if any(f not in ("JPEG", "WEBP") for f in formats):
            publish = self.publishes[publish_id]
            publish.statuses = deque(["FAILED"])
            publish.fail_reason = "file_format_check_failed"
        return self._ok({"publish_id": publish_id})

    def _new_publish(self, kind: str, level: str, body: dict[str, Any]) -> str:
        statuses, reason = (self._scripts.popleft() if self._scripts
                            else (list(self.default_statuses), ""))
        publish_id = f"{'v' if kind == 'video' else 'p'}_pub_url~v2-1.{next(self._ids)}"
        self.publishes[publish_id] = Publish(publish_id, kind, level, body, deque(statuses),
                                             fail_reason=reason,
                                             moderation_polls=self.moderation_polls)
        return publish_id

    def _status(self, request: Recorded) -> Reply:
        publish = self.publishes.get((request.json() or {}).get("publish_id", ""))
        if publish is None:
            return self.error("invalid_params", "publish_id not found")
        if publish.upload is not None and not publish.upload.complete:
            return self._ok({"status": "PROCESSING_UPLOAD",
                             "uploaded_bytes": publish.upload.received})
        status = publish.statuses.popleft() if len(publish.statuses) > 1 else publish.statuses[0]
        data: dict[str, Any] = {"status": status, "uploaded_bytes": 0,
                                "downloaded_bytes": 1048576}
        if status == "FAILED":
            data["fail_reason"] = publish.fail_reason or "internal"
        if status == "PUBLISH_COMPLETE" and publish.moderation_polls > 0:
            publish.moderation_polls -= 1  # complete, but still in moderation: no id yet
            data["publicaly_available_post_id"] = []
        elif status == "PUBLISH_COMPLETE":
            data["publicaly_available_post_id"] = self._public_ids(publish)
        return self._ok(data)

    def _public_ids(self, publish: Publish) -> list[int]:
        if publish.privacy_level == "SELF_ONLY":
            return []  # private posts get no public id
        if not publish.video_id:
            publish.video_id = str(7_300_000_000_000_000_000 + next(self._ids))
            self.videos[publish.video_id] = {"id": publish.video_id, "view_count": 0,
                                             "like_count": 0, "comment_count": 0,
                                             "share_count": 0}
        return [int(publish.video_id)]

    def _video_query(self, request: Recorded) -> Reply:
        fields = (request.query.get("fields") or [""])[0].split(",")
        ids = ((request.json() or {}).get("filters") or {}).get("video_ids") or []
        if not ids or len(ids) > 20:
            return self.error("invalid_params", "video_ids must hold 1 to 20 ids")
        videos = [{k: v for k, v in self.videos[i].items() if k in fields}
                  for i in ids if i in self.videos]
        return self._ok({"videos": videos, "cursor": 0, "has_more": False})


def _content_range(request: Recorded) -> tuple[int, int, int] | None:
    """``bytes first-last/total`` as numbers, or None when malformed."""
    value = request.headers.get("content-range", "")
    match = re.fullmatch(r"bytes (\d+)-(\d+)/(\d+)", value)
    return (int(match[1]), int(match[2]), int(match[3])) if match else None


@pytest.fixture(name="fake_tiktok")
def fake_tiktok_fixture() -> Iterator[FakeTikTok]:
    server = FakeTikTok()
    server.start()
    try:
        yield server
    finally:
        server.stop()


# === Login Kit (OAuth v2) for the dashboard's "Hubungkan TikTok" (issue 17) ===============
# Kept apart from the posting API above: the consent page (served here instead of
# www.tiktok.com), ``grant_type=authorization_code`` at ``/v2/oauth/token/`` and
# ``/v2/user/info/``. Wrong client secret: ``invalid_client``; unknown, spent or
# expired code, or a ``redirect_uri`` other than the consent page's: ``invalid_grant``.

from urllib.parse import urlencode  # noqa: E402 - this section's own import

AUTHORIZE = "/v2/auth/authorize/"
USER_INFO = "/v2/user/info/"


@dataclass
class FakeTikTokLogin(FakeTikTok):
    """:class:`FakeTikTok` plus the Login Kit endpoints; ``deny`` = the user cancels."""

    deny: bool = False
    codes: dict[str, str] = field(default_factory=dict)  # code -> redirect_uri
    display_name: str = "UMKM TTS Resmi"
    open_id: str = "fake-open-id"

    def handle(self, request: Recorded) -> Reply:
        if request.path == AUTHORIZE:
            return self._authorize(request)
        if request.path == USER_INFO and request.bearer in self.access_tokens:
            return self._ok({"user": {"open_id": self.open_id,
                                      "display_name": self.display_name}})
        return super().handle(request)

    def _authorize(self, request: Recorded) -> Reply:
        query = {k: v[0] for k, v in request.query.items()}
        redirect = query.get("redirect_uri", "")
        if query.get("client_key") != CLIENT_KEY or not redirect \
                or query.get("response_type") != "code":
            return Reply(400, {"error": "invalid_request"})
        answer = {"state": query.get("state", ""), "scopes": query.get("scope", "")}
        if self.deny:
            answer |= {"error": "access_denied",
                       "error_description": "The user denied the authorization"}
        else:
            code = f"fake-code-{next(self._ids)}"
            self.codes[code] = redirect
            answer["code"] = code
        return Reply(302, {}, {"Location": f"{redirect}?{urlencode(answer)}"})

    def _oauth(self, request: Recorded) -> Reply:
        form = request.form()
        if form.get("grant_type") != "authorization_code":
            return super()._oauth(request)
        if form.get("client_key") != CLIENT_KEY or form.get("client_secret") != CLIENT_SECRET:
            return Reply(401, {"error": "invalid_client",
                               "error_description": "Client key or secret is incorrect.",
                               "log_id": "FAKE"})
        with self._lock:
            redirect = self.codes.pop(form.get("code", ""), None)
        if redirect is None or redirect != form.get("redirect_uri"):
            return Reply(400, {"error": "invalid_grant",
                               "error_description": "Authorization code is expired or "
                               "the redirect_uri does not match.", "log_id": "FAKE"})
        access, refresh = self.issue_tokens()
        return Reply(200, {
            "access_token": access, "expires_in": 86400, "open_id": self.open_id,
            "refresh_expires_in": 31536000, "refresh_token": refresh,
            "scope": "user.info.basic,video.publish,video.upload", "token_type": "Bearer"})


@pytest.fixture(name="fake_tiktok_login")
def fake_tiktok_login_fixture() -> Iterator[FakeTikTokLogin]:
    server = FakeTikTokLogin()
    server.start()
    try:
        yield server
    finally:
        server.stop()
