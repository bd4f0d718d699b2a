"""The tracking fast path (web.tracking_fast) answers exactly as the full stack does.

Each case goes to two apps on the same database: the app as built, and the same app
without :class:`TrackingFastPath` (every request through all middlewares and the
router). Status, headers and body must be equal, and so must what was recorded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.config import Settings
from engine.engagement import ingest
from engine.engagement.tracking import (
    make_click_token,
    make_open_token,
    make_unsubscribe_token,
)
from engine.models import EngagementEvent
from tests.web.test_tracking_web import BROWSER, World, _tampered, add_link, make_world
from web import headers as security_headers
from web.app import create_app
from web.tracking_fast import TrackingFastPath, has_body, tracking_token

COMPARED = ("type", "channel", "delivery_id", "run_id", "customer_id", "business_id",
            "product_id", "link_id", "suspected_bot", "raw")


def full_stack_app(settings: Settings) -> FastAPI:
    """The app without its fast path: what tracking requests met before it."""
    app = create_app(settings)
    fast: Any = TrackingFastPath
    app.user_middleware = [m for m in app.user_middleware if m.cls is not fast]
    return app


@dataclass
class Pair:
    fast: TestClient
    full: TestClient

    def both(self, method: str, path: str, **options: Any) -> tuple[Any, Any]:
        options.setdefault("follow_redirects", False)
        return (self.fast.request(method, path, **options),
                self.full.request(method, path, **options))


@pytest.fixture
def pair(settings: Settings) -> Iterator[Pair]:
    with TestClient(create_app(settings)) as fast, \
            TestClient(full_stack_app(settings)) as full:
        yield Pair(fast, full)


def answer_of(response: Any) -> tuple[int, list[tuple[str, str]], bytes]:
    return response.status_code, sorted(response.headers.multi_items()), response.content


def events(db: Session) -> list[tuple[Any, ...]]:
    db.expire_all()
    rows = db.scalars(select(EngagementEvent).order_by(EngagementEvent.id))
    return [tuple(getattr(row, c) for c in COMPARED) for row in rows]


def assert_same(pair: Pair, db: Session, path: str, *, recorded: int,
                method: str = "GET", **options: Any) -> Any:
    """Both apps give the same answer and record the same (``recorded`` events each)."""
    before = len(events(db))
    fast, full = pair.both(method, path, **options)
    assert answer_of(fast) == answer_of(full), path
    new = events(db)[before:]
    assert len(new) == 2 * recorded, path
    assert new[:recorded] == new[recorded:]
    return fast


# ----------------------------------------------------------------------------- recorded
def test_an_open_gets_the_same_gif_headers_and_event(pair: Pair, db: Session) -> None:
    world = make_world(db)
    path = f"/t/o/{make_open_token(world.delivery.id)}"
    for _ in range(2):  # cold (delivery read from the database), then cached
        answer = assert_same(pair, db, path, recorded=1, headers={"User-Agent": BROWSER})
        assert answer.status_code == 200 and answer.content.startswith(b"GIF89a")
        assert answer.headers["content-security-policy"]
        assert answer.headers["x-frame-options"] == "DENY"
        assert "no-store" in answer.headers["cache-control"]


def test_a_click_gets_the_same_redirect_to_the_stored_url(pair: Pair, db: Session) -> None:
    world = make_world(db)
    path = f"/t/c/{make_click_token(world.delivery.id, world.link.id)}"
    for agent in (BROWSER, "Mozilla/5.0 (compatible; Barracuda Sentinel)", None):
        headers = {"User-Agent": agent} if agent else {}
        answer = assert_same(pair, db, path, recorded=1, headers=headers)
        assert (answer.status_code, answer.headers["location"]) == (302, world.link.url)


def test_a_click_on_a_link_with_odd_characters_is_quoted_the_same(pair: Pair,
                                                                  db: Session) -> None:
    world = make_world(db)
    odd = add_link(db, world.delivery.run_id,
                   "https://umkm.ttskab.go.id/produk/tenun ikat?nama=Tenun Ikat&x=ä")
    db.commit()
    answer = assert_same(pair, db, f"/t/c/{make_click_token(world.delivery.id, odd.id)}",
                         recorded=1)
    assert answer.status_code == 302


def test_over_https_both_send_hsts(settings: Settings, db: Session) -> None:
    world = make_world(db)
    with TestClient(create_app(settings), base_url="https://testserver") as fast, \
            TestClient(full_stack_app(settings), base_url="https://testserver") as full:
        https = Pair(fast, full)
        for path in (f"/t/o/{make_open_token(world.delivery.id)}",
                     f"/t/c/{make_click_token(world.delivery.id, world.link.id)}"):
            answer = assert_same(https, db, path, recorded=1)
            assert answer.headers["strict-transport-security"].startswith("max-age=")


def test_a_delivery_sent_a_moment_ago_is_flagged_the_same(pair: Pair, db: Session) -> None:
    fresh = make_world(db, sent_ago=timedelta(seconds=0))
    assert_same(pair, db, f"/t/c/{make_click_token(fresh.delivery.id, fresh.link.id)}",
                recorded=1, headers={"User-Agent": BROWSER})
    assert events(db)[-1][COMPARED.index("suspected_bot")] is True


# ----------------------------------------------------------------------------- refused
def refused_paths(world: World, other: World, db: Session) -> list[str]:
    """Every kind of token that must record nothing and answer the 404 page."""
    good_open = make_open_token(world.delivery.id)
    good_click = make_click_token(world.delivery.id, world.link.id)
    unsafe = add_link(db, world.delivery.run_id, "javascript:alert(document.cookie)")
    db.commit()
    return [
        f"/t/o/{_tampered(good_open)}",                                   # forged
        f"/t/c/{_tampered(good_click)}",
        f"/t/o/{good_open[:-2]}",                                         # truncated
        f"/t/o/{good_click}",                                             # another kind
        f"/t/c/{good_open}",
        f"/t/o/{make_unsubscribe_token(world.delivery.id)}",
        f"/t/o/{make_open_token(world.delivery.id + 1000)}",              # unknown delivery
        f"/t/c/{make_click_token(world.delivery.id + 1000, world.link.id)}",
        f"/t/c/{make_click_token(world.delivery.id, world.link.id + 999)}",  # unknown link
        f"/t/c/{make_click_token(world.delivery.id, other.link.id)}",     # foreign link
        f"/t/c/{make_click_token(world.delivery.id, unsafe.id)}",         # unsafe target
        "/t/c/aHR0cHM6Ly9ldmlsLmV4YW1wbGU",                               # no token at all
        "/t/o/x" + "A" * 300,                                             # too long
    ]


def test_refused_tokens_get_the_same_404_page_and_record_nothing(pair: Pair,
                                                                 db: Session) -> None:
    world, other = make_world(db), make_world(db)
    for path in refused_paths(world, other, db):
        answer = assert_same(pair, db, path, recorded=0, headers={"User-Agent": BROWSER})
        assert answer.status_code == 404, path
        assert "location" not in answer.headers
        assert answer.headers["content-type"].startswith("text/html")
        assert answer.headers["x-frame-options"] == "DENY"


@pytest.mark.parametrize("path", ["/t/o/", "/t/c/", "/t/o/a/b", "/t/o//evil.example",
                                  "/t/c/%2F%2Fevil.example", "/t/o/abc/"])
def test_paths_the_routes_do_not_match_are_the_full_stacks(pair: Pair, db: Session,
                                                          path: str) -> None:
    assert_same(pair, db, path, recorded=0)


def test_head_and_a_request_with_a_body_take_the_full_stack(pair: Pair, db: Session) -> None:
    world = make_world(db)
    path = f"/t/o/{make_open_token(world.delivery.id)}"
    head = assert_same(pair, db, path, recorded=0, method="HEAD")
    assert (head.status_code, head.headers["allow"]) == (405, "GET")
    with_body = assert_same(pair, db, path, recorded=1, content=b"x" * 10)
    assert with_body.status_code == 200


def test_the_choice_of_way_in() -> None:
    def scope(method: str = "GET", path: str = "/t/o/abc", root_path: str = "",
              headers: list[tuple[bytes, bytes]] | None = None) -> dict[str, Any]:
        return {"type": "http", "method": method, "path": path, "root_path": root_path,
                "headers": headers or []}

    assert tracking_token(scope()) == ("/t/o/", "abc")
    assert tracking_token(scope(path="/t/c/abc")) == ("/t/c/", "abc")
    assert tracking_token(scope(method="HEAD")) is None
    assert tracking_token(scope(root_path="/umkm")) is None
    assert tracking_token(scope(path="/t/x/abc")) is None
    assert tracking_token(scope(headers=[(b"content-length", b"3")])) is None
    assert tracking_token(scope(headers=[(b"content-length", b"0")])) == ("/t/o/", "abc")
    assert has_body(scope(headers=[(b"transfer-encoding", b"chunked")]))


def test_a_recorded_event_skips_the_middleware_stack(pair: Pair, db: Session,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The point of it all: a good token never meets the stack, a refused one does."""
    world = make_world(db)
    seen: list[str] = []
    original = security_headers.SecurityHeaders.__call__

    async def counting(self: Any, scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["path"])
        await original(self, scope, receive, send)

    monkeypatch.setattr(security_headers.SecurityHeaders, "__call__", counting)
    good = f"/t/o/{make_open_token(world.delivery.id)}"
    refused = f"/t/o/{make_open_token(world.delivery.id + 1000)}"
    assert pair.fast.get(good).status_code == 200
    assert pair.fast.get(refused).status_code == 404
    assert seen == [refused]


# ----------------------------------------------------------------------------- errors
def crashing(error: Exception) -> Callable[..., Any]:
    async def accept(self: Any, row: dict[str, Any]) -> None:
        raise error

    return accept


@pytest.fixture
def lenient_pair(settings: Settings) -> Iterator[Pair]:
    """Clients that show the 500 the server sends instead of raising the error."""
    with TestClient(create_app(settings), raise_server_exceptions=False) as fast, \
            TestClient(full_stack_app(settings), raise_server_exceptions=False) as full:
        yield Pair(fast, full)


def test_a_crash_inside_is_the_same_500_as_anywhere(lenient_pair: Pair, db: Session,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    world = make_world(db)
    monkeypatch.setattr(ingest.Ingest, "accept", crashing(RuntimeError("disk on fire")))
    for path in (f"/t/o/{make_open_token(world.delivery.id)}",
                 f"/t/c/{make_click_token(world.delivery.id, world.link.id)}"):
        answer = assert_same(lenient_pair, db, path, recorded=0)
        assert answer.status_code == 500, path


def test_an_error_with_a_handler_gets_the_same_page(lenient_pair: Pair, db: Session,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """An engine error escaping the recording is the app's error page, with the site's
    security headers, exactly as from the route."""
    from engine.common.errors import BadRequest

    world = make_world(db)
    monkeypatch.setattr(ingest.Ingest, "accept",
                        crashing(BadRequest("web.number_out_of_range")))
    answer = assert_same(lenient_pair, db, f"/t/o/{make_open_token(world.delivery.id)}",
                         recorded=0)
    assert answer.status_code == 400
    assert answer.headers["content-type"].startswith("text/html")
    assert answer.headers["x-frame-options"] == "DENY"


def test_a_delivery_id_beyond_the_database_integers_is_answered_the_same(
        lenient_pair: Pair, db: Session) -> None:
    make_world(db)
    for path in (f"/t/o/{make_open_token(2**63 + 5)}",
                 f"/t/c/{make_click_token(2**63 + 5, 2**64 - 1)}"):
        answer = assert_same(lenient_pair, db, path, recorded=0)
        assert answer.status_code in (400, 404), path
