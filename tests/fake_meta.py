"""A fake Meta Graph API: a real HTTP server on loopback that behaves like the documented one.

It implements the flows the Facebook and Instagram adapters use, with Graph's own answer
and error shapes:

- Pages: ``POST /{page}/feed`` (``message``, ``link``), ``POST /{page}/photos`` (``url``,
  ``caption``), ``GET /{page}/published_posts`` and ``/feed``, ``GET /{post}`` with the
  engagement fields, ``GET /{post}/insights``; a repeated message is refused with
  ``(#506) Duplicate status message``;
- Instagram: ``GET /{ig}/content_publishing_limit``, ``POST /{ig}/media`` (container),
  ``GET /{container}?fields=status_code`` walking a scripted status sequence
  (``IN_PROGRESS`` -> ``FINISHED``, ``ERROR``, ``EXPIRED``), ``POST /{ig}/media_publish``
  (refused with code 9 / 2207042 once the quota is used), ``GET /{ig}/media``,
  ``GET /{media}/insights`` (``impressions`` and ``plays`` are invalid metrics now);
- tokens in ``expired_tokens`` get ``190`` / subcode ``463``;
- Facebook Login (:mod:`tests.fake_meta_oauth`): the consent dialog, ``/oauth/access_token``
  (code and ``fb_exchange_token``), ``/me/accounts``, a page's Instagram account and
  ``GET /{phone-number-id}``, refusing bad codes, secrets and redirect URIs as Graph does.

Scripting: :meth:`FakeMeta.script` queues canned answers for one ``(method, path)``;
each canned answer replaces the normal one (``body``), adds headers to it (``headers``
only, e.g. usage headers), drops the connection before acting (``drop``) or acts and then
drops the connection without answering (``drop_after``: the post exists, the client
never learns it).  Every request is recorded in :attr:`FakeMeta.requests`.

Use the ``fake_meta`` fixture (import ``fake_meta_fixture`` into a test module).
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from tests.fake_media import fetch, instagram_ratio_ok
from tests.fake_meta_oauth import OAUTH_PATHS, MetaOAuth

FB_POST_METRICS = frozenset({
    "post_media_view", "post_total_media_view_unique", "post_clicks",
    "post_reactions_by_type_total",
})
IG_MEDIA_METRICS = frozenset({
    "views", "reach", "likes", "comments", "shares", "saved", "total_interactions",
    "follows", "profile_visits", "profile_activity",
})


@dataclass(frozen=True)
class Recorded:
    """One request as the fake server saw it (``path`` without the version prefix)."""

    method: str
    path: str
    version: str
    params: dict[str, str]
    headers: dict[str, str]


@dataclass
class Canned:
    """A scripted answer; see the module doc for how the fields combine."""

    status: int = 200
    body: Any = None  # JSON-able; a str is sent as an HTML page
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False
    drop_after: bool = False
    delay: float = 0.0


def graph_error(
    code: int,
    subcode: int | None = None,
    message: str = "",
    *,
    status: int = 400,
    kind: str = "OAuthException",
    headers: dict[str, str] | None = None,
) -> Canned:
    """A canned Graph error in the documented shape."""
    error: dict[str, Any] = {
        "message": message or f"(#{code}) scripted error",
        "type": kind,
        "code": code,
        "fbtrace_id": "AbCdEfGh123",
    }
    if subcode is not None:
        error["error_subcode"] = subcode
    return Canned(status=status, body={"error": error}, headers=dict(headers or {}))


def usage_header(call_count: int, *, regain_minutes: int = 0, buc: bool = False) -> dict[str, str]:
    """``X-App-Usage`` (or ``X-Business-Use-Case-Usage`` with ``buc``) at ``call_count``%."""
    block: dict[str, Any] = {"call_count": call_count, "total_time": 10, "total_cputime": 5}
    if buc:
        block |= {"type": "pages", "estimated_time_to_regain_access": regain_minutes}
        return {"X-Business-Use-Case-Usage": json.dumps({"1234567890": [block]})}
    return {"X-App-Usage": json.dumps(block)}


class FakeMeta:
    """State and scripting of the fake Graph server; ``base_url`` is where it listens."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.posts: dict[str, list[dict[str, Any]]] = {}
        self.engagement: dict[str, dict[str, Any]] = {}
        self.insights: dict[str, dict[str, int]] = {}
        self.containers: dict[str, dict[str, Any]] = {}
        self.media: dict[str, list[dict[str, Any]]] = {}
        self.quota_usage: dict[str, int] = {}
        self.quota_total = 50
        self.container_script: deque[list[str]] = deque()
        self.expired_tokens: set[str] = set()
        self.usage_headers: dict[str, str] = {}
        self.retired_metrics: set[str] = set()  # Meta removed them: error 100 from now on
        # Public host -> loopback server of the photos (tests.fake_media); None: undeclared.
        self.media_hosts: dict[str, str] | None = None
        self.oauth = MetaOAuth(self)  # Facebook Login, pages, phone numbers
        self._queues: dict[tuple[str, str], deque[Canned]] = {}
        self._ids = itertools.count(1001)
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.base_url = ""

    # -- lifecycle ------------------------------------------------------------------
    def start(self) -> None:
        handler = type("Handler", (_Handler,), {"fake": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        port = self._server.server_address[1]
        self.base_url = f"http://127.0.0.1:{port}/"
        # a short poll keeps shutdown (once per test) from costing half a second
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    # -- scripting and inspection ---------------------------------------------------
    def script(self, method: str, path: str, *answers: Canned) -> None:
        """Queue canned answers for ``method path`` (path without version, e.g. ``p/feed``)."""
        with self._lock:
            self._queues.setdefault((method.upper(), path), deque()).extend(answers)

    def calls(self, method: str | None = None, path: str | None = None) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests
                    if (method is None or r.method == method.upper())
                    and (path is None or r.path == path)]

    def count(self, method: str, path: str) -> int:
        return len(self.calls(method, path))

    def new_id(self, prefix: str = "") -> str:
        return f"{prefix}{next(self._ids)}"

    # -- request handling (server threads) ------------------------------------------
    def handle(self, method: str, path: str, params: dict[str, str]) -> Canned:
        """The answer to one request; the caller writes (or drops) it."""
        with self._lock:
            queue = self._queues.get((method, path))
            canned = queue.popleft() if queue else None
        if canned is not None and (canned.body is not None or canned.drop):
            return canned
        if path in OAUTH_PATHS:
            with self._lock:
                return self.oauth.exchange(path, params)
        token = params.get("access_token", "")
        if not token:
            answer = graph_error(2500, message="An active access token must be used")
        elif token in self.expired_tokens:
            answer = graph_error(
                190, 463, "Error validating access token: Session has expired on Monday."
            )
        else:
            with self._lock:
                answer = self._route(method, path, params)
        if canned is not None:  # headers / drop_after / delay on top of the normal answer
            answer.headers = {**answer.headers, **canned.headers}
            answer.drop_after = canned.drop_after
            answer.delay = canned.delay
            if canned.status != 200:
                answer.status = canned.status
        return answer

    def _route(self, method: str, path: str, p: dict[str, str]) -> Canned:
        parts = path.split("/")
        node, edge = parts[0], (parts[1] if len(parts) > 1 else "")
        owned = self.oauth.route(method, node, edge, p)
        if owned is not None:
            return owned
        if method == "POST" and edge == "feed":
            return self._create_post(node, p.get("message", ""), link=p.get("link"))
        if method == "POST" and edge == "photos":
            return self._create_photo(node, p)
        if method == "POST" and edge == "media":
            return self._create_container(node, p)
        if method == "POST" and edge == "media_publish":
            return self._publish(node, p.get("creation_id", ""))
        if method == "GET" and edge in ("feed", "published_posts"):
            limit = int(p.get("limit", "25"))
            rows = [{k: post[k] for k in ("id", "message", "created_time") if k in post}
                    for post in reversed(self.posts.get(node, []))]
            return Canned(body={"data": rows[:limit]})
        if method == "GET" and edge == "content_publishing_limit":
            row = {"quota_usage": self.quota_usage.get(node, 0),
                   "config": {"quota_total": self.quota_total, "quota_duration": 86400}}
            return Canned(body={"data": [row]})
        if method == "GET" and edge == "media":
            rows = list(reversed(self.media.get(node, [])))
            return Canned(body={"data": rows[: int(p.get("limit", "25"))]})
        if method == "GET" and edge == "insights":
            return self._insights(node, p.get("metric", ""))
        if method == "GET" and not edge:
            return self._read_node(node, p)
        return graph_error(100, 33, f"Unsupported {method.lower()} request.")

    def _create_post(self, page: str, message: str, **extra: Any) -> Canned:
        if any(post.get("message") == message for post in self.posts.get(page, [])):
            return graph_error(506, message="(#506) Duplicate status message")
        post = {"id": f"{page}_{self.new_id()}", "message": message,
                "created_time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S+0000"), **extra}
        self.posts.setdefault(page, []).append(post)
        return Canned(body={"id": post["id"]})

    def _create_photo(self, page: str, p: dict[str, str]) -> Canned:
        if not p.get("url"):
            return graph_error(324, message="(#324) Requires upload file")
        if fetch(p["url"], self.media_hosts).problem:
            return graph_error(324, 2069019, "(#324) Missing or invalid image file")
        answer = self._create_post(page, p.get("caption", ""), photo_url=p["url"])
        if answer.status != 200:
            return answer
        return Canned(body={"id": self.new_id("photo-"), "post_id": answer.body["id"]})

    def _create_container(self, ig_user: str, p: dict[str, str]) -> Canned:
        if p.get("video_url") and p.get("media_type") != "REELS":
            return graph_error(100, 2207053, "The media type VIDEO is not supported; use REELS")
        if not (p.get("image_url") or p.get("video_url")):
            return graph_error(100, message="(#100) The parameter image_url is required.")
        if p.get("image_url"):
            problem = self._instagram_image(p["image_url"])
            if problem is not None:
                return problem
        statuses = self.container_script.popleft() if self.container_script else ["FINISHED"]
        container = self.new_id("c")
        self.containers[container] = {"ig_user": ig_user, "statuses": list(statuses),
                                      "polls": 0, "caption": p.get("caption", ""),
                                      "published": False, "params": dict(p)}
        return Canned(body={"id": container})

    def _instagram_image(self, url: str) -> Canned | None:
        """Instagram fetches the photo at once: JPEG only, aspect ratio 4:5 to 1.91:1."""
        fetched = fetch(url, self.media_hosts)
        if fetched.problem:
            return graph_error(9004, 2207052, "(#9004) Media download has failed. The "
                               "media URI doesn't meet our requirements.")
        if fetched.format != "JPEG":
            return graph_error(36001, 2207005, "The image format is not supported.")
        if not instagram_ratio_ok(fetched):
            return graph_error(36003, 2207009, f"The submitted image with aspect ratio "
                               f"('{fetched.width}/{fetched.height}',) cannot be published. "
                               "Please submit an image with a valid aspect ratio.")
        return None

    def container_status(self, container: str) -> str:
        box = self.containers[container]
        if box["published"]:
            return "PUBLISHED"
        statuses: list[str] = box["statuses"]
        return str(statuses[min(box["polls"], len(statuses) - 1)])

    def _publish(self, ig_user: str, creation_id: str) -> Canned:
        box = self.containers.get(creation_id)
        if box is None or box["ig_user"] != ig_user:
            return graph_error(100, message="(#100) Param creation_id is not a valid container")
        if self.quota_usage.get(ig_user, 0) >= self.quota_total:
            return graph_error(9, 2207042, "(#9) Application request limit reached",
                               kind="OAuthException", status=400)
        status = self.container_status(creation_id)
        if status == "PUBLISHED":
            return graph_error(100, 2207050, "(#100) The container was already published")
        if status != "FINISHED":
            return graph_error(9007, 2207027, "(#9007) The media is not ready for publishing")
        box["published"] = True
        media = {"id": self.new_id("m"), "caption": box["caption"],
                 "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")}
        self.media.setdefault(ig_user, []).append(media)
        self.quota_usage[ig_user] = self.quota_usage.get(ig_user, 0) + 1
        return Canned(body={"id": media["id"]})

    def _read_node(self, node: str, p: dict[str, str]) -> Canned:
        if node in self.containers:
            status = self.container_status(node)
            self.containers[node]["polls"] += 1
            body: dict[str, Any] = {"id": node, "status_code": status}
            if status == "ERROR":
                body["status"] = "Error: 2207026 (media could not be fetched)"
            return Canned(body=body)
        if any(post["id"] == node for posts in self.posts.values() for post in posts):
            counts = self.engagement.get(node, {})
            body = {"id": node}
            for edge in ("reactions", "comments"):
                body[edge] = {"data": [], "summary": {"total_count": counts.get(edge, 0)}}
            if counts.get("shares"):
                body["shares"] = {"count": counts["shares"]}
            return Canned(body=body)
        return graph_error(100, 33, f"Object with ID '{node}' does not exist")

    def _insights(self, node: str, metric: str) -> Canned:
        names = [m for m in metric.split(",") if m]
        is_post = "_" in node
        valid = FB_POST_METRICS if is_post else IG_MEDIA_METRICS
        bad = [m for m in names if m not in valid or m in self.retired_metrics]
        if not names or bad:
            return graph_error(100, message=f"(#100) metric[0] must be one of the following "
                               f"values: {', '.join(sorted(valid))}; got {bad}")
        known = self.insights.get(node)
        if known is None:
            return graph_error(100, 33, f"Object with ID '{node}' does not exist")
        data = [{"name": m, "period": "lifetime", "values": [{"value": known[m]}],
                 "title": m, "id": f"{node}/insights/{m}/lifetime"}
                for m in names if m in known]
        return Canned(body={"data": data})


class _Handler(BaseHTTPRequestHandler):
    fake: FakeMeta

    def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def _serve(self, method: str) -> None:
        url = urlsplit(self.path)
        params = dict(parse_qsl(url.query))
        authorization = self.headers.get("Authorization", "")
        if authorization.lower().startswith("bearer ") and "access_token" not in params:
            params["access_token"] = authorization[7:]  # Graph takes the token either way
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            params.update(parse_qsl(self.rfile.read(length).decode("utf-8")))
        parts = url.path.strip("/").split("/", 1)
        version, path = ("", url.path.strip("/"))
        if parts[0].startswith("v") and len(parts) == 2:
            version, path = parts[0], parts[1]
        fake = self.fake
        with fake._lock:
            fake.requests.append(Recorded(method, path, version, params, dict(self.headers)))
        answer = fake.handle(method, path, params)
        if answer.delay:
            time.sleep(answer.delay)
        if answer.drop or answer.drop_after:
            self.close_connection = True  # no status line at all: the client sees a reset
            return
        if isinstance(answer.body, str):  # an HTML error page from a proxy
            body, content_type = answer.body.encode("utf-8"), "text/html; charset=UTF-8"
        else:
            body = json.dumps(answer.body).encode("utf-8")
            content_type = "application/json; charset=UTF-8"
        self.send_response(answer.status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in {**fake.usage_headers, **answer.headers}.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(name="fake_meta")
def fake_meta_fixture() -> Iterator[FakeMeta]:
    """A running fake Graph server for one test."""
    fake = FakeMeta()
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()
