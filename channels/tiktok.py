"""TikTok Content Posting API (Direct Post, ``PULL_FROM_URL``) over httpx.

Why each step exists (DESIGN §7, TikTok for Developers docs):

* ``creator_info/query`` runs before **every** post: the privacy levels a creator may
  use, the comment/duet/stitch switches and the longest allowed video change over time,
  and TikTok rejects a post that does not match the latest answer.
* The privacy level is only ever one of ``privacy_level_options``.  An unaudited app
  (the default configuration here) may only post ``SELF_ONLY``; an audited app posts
  ``PUBLIC_TO_EVERYONE`` when it is offered.
* Photos go through ``content/init`` (``media_type=PHOTO``), videos through
  ``video/init``: photos are pulled by TikTok from our public URL, a local MP4 is sent
  in chunks with ``FILE_UPLOAD`` (:mod:`channels.tiktok_upload`).
* The ``publish_id`` is checkpointed through :class:`~channels.base.SocialHooks` right
  after init, before polling: a worker killed in between resumes by polling that id and
  never initialises a second post.
* ``status/fetch`` is polled a bounded number of times within TikTok's per-token rate
  limits (creator_info 20/min, init 6/min, status 30/min); the wait is injectable.
* Access tokens live 24 hours and refresh tokens **rotate**: a refresh returns a new
  refresh token and the old one stops working, so both are stored together, at once.
  Several workers post for the same account with the same stored tokens, so the refresh
  goes through ``hooks.refresh_tokens``: the engine locks the account, and a worker that
  finds the token already rotated by another one takes the stored set instead of
  spending its stale refresh token (which TikTok would answer with ``invalid_grant``).
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from channels.base import (
    AccountCredentials,
    AuthChannelError,
    Capabilities,
    ChannelError,
    ChannelKind,
    OutboundMessage,
    PermanentChannelError,
    SendResult,
    SendStatus,
    SocialHooks,
    TransientChannelError,
)
from channels.http import HttpChannel, nothing_sent
from channels.metrics import EngagementMetric, MetricType
from channels.tiktok_posts import (
    MAX_CAPTION,
    SELF_ONLY,
    UNAUDITED_TEXT,
    CreatorInfo,
    PublishOutcome,
    TikTokPost,
    check_duration,
    choose_privacy_level,
    photo_init_body,
    video_init_body,
)
from channels.tiktok_upload import DEFAULT_CHUNK, ChunkPlan, local_video, plan_chunks, upload_chunks
from channels.tokens import TokenSet

log = logging.getLogger(__name__)

API_CREATOR_INFO = "/v2/post/publish/creator_info/query/"
API_VIDEO_INIT = "/v2/post/publish/video/init/"
API_CONTENT_INIT = "/v2/post/publish/content/init/"
API_STATUS = "/v2/post/publish/status/fetch/"
API_TOKEN = "/v2/oauth/token/"
API_VIDEO_QUERY = "/v2/video/query/"

UNAUDITED_CODE = "unaudited_client_can_only_post_to_private_accounts"

# Per-user-token limits from the API reference (requests per minute).
RATE_LIMITS: dict[str, int] = {API_CREATOR_INFO: 20, API_VIDEO_INIT: 6,
                               API_CONTENT_INIT: 6, API_STATUS: 30}
DEFAULT_THROTTLE_SECONDS = 60.0
# spam_risk_* and reached_active_user_cap are daily caps: retrying sooner only adds to
# the spam signal TikTok already holds against the account.
SPAM_COOL_DOWN_SECONDS = 24 * 3600.0
# Refresh a little before the recorded expiry so a call never races the deadline.
EXPIRY_SKEW = timedelta(seconds=60)

VIDEO_QUERY_FIELDS = ("id", "view_count", "like_count", "comment_count", "share_count")
VIDEO_QUERY_BATCH = 20  # video/query accepts at most 20 ids per request

DONE_STATUSES = frozenset({"PUBLISH_COMPLETE", "SEND_TO_USER_INBOX"})
FAILED_STATUS = "FAILED"

_AUTH_CODES = frozenset({"scope_not_authorized", "scope_permission_missed"})
_PERMANENT_TEXTS: dict[str, str] = {
    "url_ownership_unverified": "domain URL media belum diverifikasi di TikTok for Developers",
    "invalid_params": "permintaan ditolak TikTok (parameter tidak valid)",
    "invalid_param": "permintaan ditolak TikTok (parameter tidak valid)",
    "invalid_file_upload": "berkas media tidak memenuhi ketentuan TikTok",
}


class _RateWindow:
    """At most ``limit`` calls per ``period`` seconds, waiting through an injected sleep.

    Time advances logically by the amount slept, so a fake ``sleep`` in tests behaves
    like the real one (the window empties after the wait).
    """

    def __init__(self, limit: int, period: float, sleep: Callable[[float], None]) -> None:
        self.limit = limit
        self.period = period
        self._sleep = sleep
        self._calls: deque[float] = deque()

    def acquire(self) -> None:
        now = time.monotonic()
        while self._calls and self._calls[0] <= now - self.period:
            self._calls.popleft()
        if len(self._calls) >= self.limit:
            wait = self._calls[0] + self.period - now
            if wait > 0:
                self._sleep(wait)
                now += wait
            self._calls.popleft()
        self._calls.append(now)


class _TokenRejected(Exception):
    """The access token was refused: refresh once, then give up (never surfaces)."""

    def __init__(self, raw: dict[str, Any]) -> None:
        super().__init__("access_token_invalid")
        self.raw = raw


# --------------------------------------------------------------------------- adapter


class TikTokChannel(HttpChannel[TikTokPost, PublishOutcome]):
    """Direct Post of photos and videos to one TikTok account (see module doc)."""

    name = "tiktok"
    # Pacing is done per endpoint with the injectable sleep (RATE_LIMITS), not by the
    # base class, whose sleep cannot be replaced.
    capabilities = Capabilities(
        media_types=frozenset({"image", "video"}),
        max_text_length=MAX_CAPTION,
        max_batch=20,
        rate_per_second=None,
        metrics=True,
        kind=ChannelKind.POST,
        label="TikTok",
    )
    option_names = ("base_url", "client_key", "client_secret", "audited", "poll_interval",
                    "timeout")

    def __init__(
        self,
        credentials: AccountCredentials,
        *,
        hooks: SocialHooks,
        base_url: str = "https://open.tiktokapis.com",
        client_key: str = "",
        client_secret: str = "",
        audited: bool = False,
        poll_interval: float = 3.0,
        max_polls: int = 20,
        sleep: Callable[[float], None] = time.sleep,
        http: httpx.Client | None = None,
        timeout: float = 30.0,
        chunk_size: int = DEFAULT_CHUNK,
        upload_timeout: float = 300.0,
    ) -> None:
        super().__init__(http=http, timeout=timeout)
        self.credentials = credentials
        self.hooks = hooks
        self.base_url = base_url.rstrip("/")
        self.client_key = client_key
        self.client_secret = client_secret
        self.audited = audited
        self.poll_interval = poll_interval
        self.max_polls = max(1, max_polls)
        self._sleep = sleep
        self.chunk_size = chunk_size
        self.upload_timeout = upload_timeout  # one chunk over a slow link, not one JSON call
        self._access_token = credentials.access_token
        self._refresh_token = credentials.refresh_token
        self._expires_at = credentials.expires_at
        self._windows = {
            path: _RateWindow(limit, 60.0, sleep) for path, limit in RATE_LIMITS.items()
        }

    # -- pipeline steps ---------------------------------------------------------------
    def build_payload(self, message: OutboundMessage) -> TikTokPost:
        return TikTokPost.from_payload(message.payload)

    def transmit(self, message: OutboundMessage, payload: TikTokPost) -> PublishOutcome:
        """Resume a checkpointed publish, or query the creator, init, checkpoint, poll."""
        state = self.hooks.load_state(message.delivery_id)
        checkpointed = state.get("publish_id")
        # A publish whose file upload did not finish can never publish: init anew.
        if isinstance(checkpointed, str) and checkpointed and state.get("uploaded") is not False:
            log.info("tiktok: delivery %s resumes publish %s", message.delivery_id, checkpointed)
            return self._await_publish(checkpointed, privacy_level=None, resumed=True)
        video = local_video(payload.video_path) if payload.video_path else None
        plan = plan_chunks(video[1], self.chunk_size) if video else None
        creator = self.creator_info()
        level = choose_privacy_level(creator.privacy_level_options, audited=self.audited,
                                     requested=payload.privacy_level, consent=payload.consent)
        check_duration(payload, creator)
        data, level = self._init_with_fallback(payload, creator, level, plan)
        publish_id = str(data["publish_id"])
        self.hooks.checkpoint(message.delivery_id,
                              {"publish_id": publish_id, **({"uploaded": False} if plan else {})})
        if video and plan:
            upload_chunks(self._client(), str(data.get("upload_url") or ""), video[0], plan,
                          self.upload_timeout)
            self.hooks.checkpoint(message.delivery_id, {"uploaded": True})
        return self._await_publish(publish_id, privacy_level=level, resumed=False)

    def parse(self, message: OutboundMessage, response: PublishOutcome) -> SendResult:
        raw: dict[str, Any] = {
            "publish_id": response.publish_id,
            "status": response.status,
            "post_ids": list(response.post_ids),
            "privacy_level": response.privacy_level,
            "resumed": response.resumed,
            "response": response.raw,
        }
        if isinstance(message.payload, Mapping):
            raw.update({k: message.payload.get(k) for k in ("product_id", "business_id")})
        if response.status == FAILED_STATUS:
            reason = response.fail_reason or "tidak disebutkan"
            text = f"TikTok gagal menerbitkan postingan: {reason}"
            if reason == "auth_removed":
                raise AuthChannelError(text, raw=raw)
            raise PermanentChannelError(text, raw=raw)
        provider_id = response.post_ids[0] if response.post_ids else response.publish_id
        return SendResult(message.delivery_id, SendStatus.SENT, provider_id=provider_id, raw=raw)

    # -- public helpers ---------------------------------------------------------------
    def creator_info(self) -> CreatorInfo:
        """Query what the creator allows right now (called before every post)."""
        return CreatorInfo.from_api(self._call(API_CREATOR_INFO, {}))

    def public_post_ids(self, publish_id: str) -> tuple[str, ...]:
        """``status/fetch`` again for a published post: a public post only gets its id
        (``publicaly_available_post_id``, TikTok's spelling) once moderation is done,
        often well after ``PUBLISH_COMPLETE``; until then this is empty."""
        data = self._call(API_STATUS, {"publish_id": publish_id})
        return tuple(str(p) for p in data.get("publicaly_available_post_id") or ())

    def fetch_metrics(self, provider_post_ids: Sequence[str]) -> list[EngagementMetric]:
        """Counts of published videos through ``video/query``.

        Only numeric ids are TikTok video ids; a ``publish_id`` kept for a private post
        has no public counts and is skipped.
        """
        video_ids = [p for p in dict.fromkeys(provider_post_ids) if p.isdigit()]
        metrics: list[EngagementMetric] = []
        observed = datetime.now(UTC)
        for start in range(0, len(video_ids), VIDEO_QUERY_BATCH):
            chunk = video_ids[start : start + VIDEO_QUERY_BATCH]
            data = self._call(
                API_VIDEO_QUERY,
                {"filters": {"video_ids": chunk}},
                params={"fields": ",".join(VIDEO_QUERY_FIELDS)},
            )
            for video in data.get("videos") or []:
                metrics.extend(_video_metrics(video, observed))
        return metrics

    # -- posting ----------------------------------------------------------------------
    def _init_with_fallback(
        self, post: TikTokPost, creator: CreatorInfo, level: str, plan: ChunkPlan | None
    ) -> tuple[dict[str, Any], str]:
        """Init the post; when TikTok says the app is unaudited, retry once privately."""
        try:
            return self._init(post, creator, level, plan), level
        except PermanentChannelError as exc:
            if _error_code(exc) != UNAUDITED_CODE:
                raise
            if level == SELF_ONLY or SELF_ONLY not in creator.privacy_level_options:
                raise PermanentChannelError(UNAUDITED_TEXT, raw=exc.raw) from exc
            log.warning("tiktok %s: app not audited, posting SELF_ONLY", self.credentials.key)
        try:
            return self._init(post, creator, SELF_ONLY, plan), SELF_ONLY
        except PermanentChannelError as exc:
            if _error_code(exc) == UNAUDITED_CODE:
                raise PermanentChannelError(UNAUDITED_TEXT, raw=exc.raw) from exc
            raise

    def _init(self, post: TikTokPost, creator: CreatorInfo, level: str,
              plan: ChunkPlan | None) -> dict[str, Any]:
        """The init's ``data`` (``publish_id``, and ``upload_url`` for FILE_UPLOAD)."""
        if post.kind == "video":
            source = plan.source_info() if plan else None
            path, body = API_VIDEO_INIT, video_init_body(post, creator, level, source)
        else:
            path, body = API_CONTENT_INIT, photo_init_body(post, creator, level)
        data = self._call(path, body, unsafe=True)
        publish_id = data.get("publish_id")
        if not isinstance(publish_id, str) or not publish_id:
            raise PermanentChannelError(
                "TikTok tidak mengembalikan publish_id; periksa akun sebelum mengirim ulang",
                raw={"data": data, "outcome_unknown": True},
            )
        return data

    def _await_publish(
        self, publish_id: str, *, privacy_level: str | None, resumed: bool
    ) -> PublishOutcome:
        """Poll ``status/fetch`` until a final status, at most ``max_polls`` times."""
        data: dict[str, Any] = {}
        for attempt in range(self.max_polls):
            if attempt:
                self._sleep(self.poll_interval)
            data = self._call(API_STATUS, {"publish_id": publish_id})
            status = str(data.get("status") or "")
            if status in DONE_STATUSES or status == FAILED_STATUS:
                post_ids = tuple(str(p) for p in data.get("publicaly_available_post_id") or ())
                return PublishOutcome(
                    publish_id=publish_id,
                    status=status,
                    post_ids=post_ids,
                    fail_reason=str(data.get("fail_reason") or ""),
                    privacy_level=privacy_level,
                    resumed=resumed,
                    raw=data,
                )
        # Still processing: the publish_id is checkpointed, the retry polls it again.
        raise TransientChannelError(
            f"TikTok masih memproses postingan {publish_id}",
            raw={"publish_id": publish_id, "status": data.get("status")},
            retry_after=self.poll_interval * self.max_polls,
        )

    # -- HTTP + errors ---------------------------------------------------------------
    def _call(
        self,
        path: str,
        body: Mapping[str, Any],
        *,
        params: Mapping[str, str] | None = None,
        unsafe: bool = False,
    ) -> dict[str, Any]:
        """POST to the API with the account token, refreshing it at most once."""
        refreshed = self._refresh_if_expired()
        try:
            return self._request(path, body, params, unsafe)
        except _TokenRejected as exc:
            if refreshed:
                raise AuthChannelError(
                    "token TikTok yang baru diperbarui pun ditolak; hubungkan ulang akun",
                    raw=exc.raw,
                ) from None
            self._refresh()
        try:
            return self._request(path, body, params, unsafe)
        except _TokenRejected as exc:
            raise AuthChannelError(
                "token TikTok yang baru diperbarui pun ditolak; hubungkan ulang akun", raw=exc.raw
            ) from None

    def _request(
        self,
        path: str,
        body: Mapping[str, Any],
        params: Mapping[str, str] | None,
        unsafe: bool,
    ) -> dict[str, Any]:
        window = self._windows.get(path)
        if window is not None:
            window.acquire()
        headers = {
            "Authorization": f"Bearer {self._access_token}",
            "Content-Type": "application/json; charset=UTF-8",
        }
        response = self._post(
            self.base_url + path, lambda exc: _transport_error(path, exc, unsafe),
            json=dict(body), params=params, headers=headers,
        )
        return self._read(path, response)

    def _read(self, path: str, response: httpx.Response) -> dict[str, Any]:
        try:
            document = response.json()
        except ValueError:
            document = None
        if not isinstance(document, dict):
            document = {"body": response.text[:500]}
        error = document.get("error")
        error = error if isinstance(error, dict) else {}
        code = str(error.get("code") or ("ok" if response.is_success else ""))
        if response.is_success and code == "ok":
            data = document.get("data")
            return data if isinstance(data, dict) else {}
        raw = {"http_status": response.status_code, "endpoint": path, "error": error}
        if not error:
            raw["body"] = document
        raise self._api_error(code, str(error.get("message") or ""), response, raw)

    def _api_error(
        self, code: str, message: str, response: httpx.Response, raw: dict[str, Any]
    ) -> Exception:
        """Translate one TikTok error object into the channel error tree."""
        detail = f"{code}: {message}" if message else code or f"HTTP {response.status_code}"
        if code == "access_token_invalid":
            return _TokenRejected(raw)
        if code in _AUTH_CODES or response.status_code == 401:
            return AuthChannelError(f"izin akun TikTok tidak cukup ({detail})", raw=raw)
        if code == "rate_limit_exceeded" or response.status_code == 429:
            seconds = _retry_after(response) or DEFAULT_THROTTLE_SECONDS
            return self._throttled(f"batas laju API TikTok terlampaui ({detail})", seconds, raw)
        if code.startswith("spam_risk") or code == "reached_active_user_cap":
            return self._throttled(
                f"TikTok membatasi posting akun ini untuk sementara ({detail})",
                SPAM_COOL_DOWN_SECONDS,
                raw,
            )
        if code == UNAUDITED_CODE:
            return PermanentChannelError(UNAUDITED_TEXT, raw=raw)
        if code == "privacy_level_option_mismatch":
            # Options changed between creator_info and init; the retry asks again.
            return TransientChannelError(
                f"pilihan privasi TikTok berubah, dicoba lagi ({detail})", raw=raw
            )
        if code in _PERMANENT_TEXTS:
            return PermanentChannelError(f"{_PERMANENT_TEXTS[code]} ({detail})", raw=raw)
        if response.status_code >= 500 or code == "internal_error":
            return TransientChannelError(f"galat server TikTok ({detail})", raw=raw)
        return PermanentChannelError(f"TikTok menolak permintaan ({detail})", raw=raw)

    def _throttled(self, text: str, seconds: float, raw: dict[str, Any]) -> TransientChannelError:
        self.hooks.cool_down(self.credentials.key, seconds, text)
        return TransientChannelError(text, raw=raw, retry_after=seconds, affects_account=True)

    # -- tokens -----------------------------------------------------------------------
    def _refresh_if_expired(self) -> bool:
        expires = self._expires_at
        if expires is None:
            return False
        if expires.tzinfo is None:
            expires = expires.replace(tzinfo=UTC)
        if expires - EXPIRY_SKEW > datetime.now(UTC):
            return False
        self._refresh()
        return True

    def _refresh(self) -> None:
        """Get a new token set through the engine, which serializes refreshes per account.

        Refresh tokens rotate: the one we hold dies as soon as TikTok answers, and another
        worker may hold (and spend) the very same one.  ``hooks.refresh_tokens`` locks the
        account, hands back the set another worker already stored, or calls
        :meth:`_exchange` once and stores the new access AND refresh token together.
        """
        key = self.credentials.key
        if not self._refresh_token or not self.client_key or not self.client_secret:
            raise AuthChannelError(
                "token TikTok kedaluwarsa dan tidak dapat diperbarui otomatis; hubungkan ulang "
                "akun",
                raw={"refresh": "unavailable"},
            )
        tokens = self.hooks.refresh_tokens(key, self._refresh_token, self._exchange)
        self._access_token = tokens.access_token
        self._refresh_token = tokens.refresh_token or self._refresh_token
        self._expires_at = tokens.expires_at
        log.info("tiktok %s: access token refreshed", key)

    def _exchange(self, refresh_token: str) -> TokenSet:
        """POST ``oauth/token`` once; the engine calls it with the account locked.

        ``invalid_grant`` here means the newest stored refresh token was refused (the
        engine only calls this when no other worker rotated it): the account needs a
        reconnect.
        """
        form = {
            "client_key": self.client_key,
            "client_secret": self.client_secret,
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
        }
        response = self._post(
            self.base_url + API_TOKEN, _refresh_unreachable, data=form,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        return _token_set(response, refresh_token)


# --------------------------------------------------------------------------- helpers


def _token_set(response: httpx.Response, used_refresh_token: str) -> TokenSet:
    """Read an ``oauth/token`` answer; a missing refresh token keeps the one just used."""
    try:
        document = response.json()
    except ValueError:
        document = {}
    document = document if isinstance(document, dict) else {}
    access = document.get("access_token")
    refresh = document.get("refresh_token")
    if response.status_code >= 500:
        raise TransientChannelError(
            f"galat server TikTok saat memperbarui token (HTTP {response.status_code})",
            raw={"endpoint": API_TOKEN, "http_status": response.status_code},
            affects_account=True,
        )
    if not response.is_success or not isinstance(access, str) or not access:
        raw = {"endpoint": API_TOKEN, "http_status": response.status_code,
               "error": document.get("error"), "log_id": document.get("log_id")}
        raise AuthChannelError(
            "token TikTok tidak dapat diperbarui "
            f"({document.get('error') or response.status_code}); hubungkan ulang akun",
            raw=raw,
        )
    expires_in = document.get("expires_in")
    expires_at = (
        datetime.now(UTC) + timedelta(seconds=int(expires_in))
        if isinstance(expires_in, int | float) else None
    )
    new_refresh = refresh if isinstance(refresh, str) and refresh else used_refresh_token
    return TokenSet(access, new_refresh, expires_at)


def _video_metrics(video: Mapping[str, Any], observed: datetime) -> list[EngagementMetric]:
    post_id = str(video.get("id") or "")
    metrics: list[EngagementMetric] = []
    for name in VIDEO_QUERY_FIELDS[1:]:
        value = video.get(name)
        kind = MetricType.from_provider(name)
        if kind is None or not isinstance(value, int):
            continue
        metrics.append(
            EngagementMetric(kind, value, post_id, observed_at=observed, raw=dict(video))
        )
    return metrics


def _error_code(exc: ChannelError) -> str:
    error = exc.raw.get("error")
    return str(error.get("code") or "") if isinstance(error, dict) else ""


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


def _transport_error(path: str, exc: httpx.HTTPError, unsafe: bool) -> ChannelError:
    """Nothing reached TikTok -> retry; a create call cut mid-way -> outcome unknown."""
    raw = {"endpoint": path, "exception": type(exc).__name__}
    if nothing_sent(exc):
        return TransientChannelError(
            f"tidak dapat terhubung ke TikTok: {exc!r}", raw=raw, affects_account=True
        )
    if unsafe:
        # The init may have created a post: re-sending could publish twice.
        return PermanentChannelError(
            "hasil posting TikTok tidak pasti (koneksi terputus); periksa akun TikTok sebelum "
            "mengirim ulang",
            raw={**raw, "outcome_unknown": True},
        )
    return TransientChannelError(f"koneksi ke TikTok terputus: {exc!r}", raw=raw)


def _refresh_unreachable(exc: httpx.HTTPError) -> ChannelError:
    """The token call never got an answer: the account waits, nothing was spent."""
    return TransientChannelError(
        f"gagal menghubungi TikTok untuk memperbarui token: {exc!r}",
        raw={"endpoint": API_TOKEN},
        affects_account=True,
    )
