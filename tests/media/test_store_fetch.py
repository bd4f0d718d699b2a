"""Storage by content key, the /media route, and photos fetched by URL (SSRF guarded)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
from fastapi.testclient import TestClient

from engine.config import Settings
from engine.media.errors import MediaError, MediaStoreNotConfigured
from engine.media.fetch import check_url, fetch_photo
from engine.media.images import Limits
from engine.media.store import LocalStore, media_store, save_photo, valid_key
from tests.media import corpus
from web.app import create_app

LIMITS = Limits(max_bytes=2 * 1024 * 1024, max_pixels=40_000_000)


def test_save_photo_stores_every_size_under_the_content_key(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    path = save_photo(store, corpus.jpeg(), LIMITS)
    digest = path.split("/")[2]
    assert path == f"/media/{digest}/square.jpg"
    assert sorted(p.name for p in (tmp_path / digest).iterdir()) == [
        "portrait.jpg", "square.jpg", "thumb.jpg"]
    assert save_photo(store, corpus.jpeg(), LIMITS) == path  # same photo, same key


def test_a_refused_file_stores_nothing(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    for hostile in corpus.hostile_files(LIMITS.max_bytes):
        with pytest.raises(MediaError):
            save_photo(store, hostile.data, LIMITS)
    assert list(tmp_path.iterdir()) == []


def test_keys_have_one_shape_only(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    assert not valid_key("../../x.jpg") and not valid_key("a" * 64 + "/../../x.jpg")
    assert store.get("../../etc/passwd") is None
    with pytest.raises(ValueError):
        store.put("../../x.jpg", b"x")


def test_an_unknown_store_is_a_clear_error(settings: Settings) -> None:
    with pytest.raises(MediaStoreNotConfigured) as caught:
        media_store(replace(settings, media_store="ftp"))
    assert "MEDIA_STORE=local" in str(caught.value)


def test_media_route_serves_jpeg_forever_cached_and_404s_the_rest(settings: Settings) -> None:
    path = save_photo(media_store(settings), corpus.jpeg(), LIMITS)
    with TestClient(create_app(settings)) as client:
        response = client.get(path)
        assert response.status_code == 200
        assert response.headers["content-type"] == "image/jpeg"
        assert "immutable" in response.headers["cache-control"]
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.content[:3] == b"\xff\xd8\xff"
        for bad in (path.replace("square", "original"), "/media/" + "0" * 64 + "/square.jpg",
                    "/media/..%2F..%2Fsecret.key/x.jpg", "/media/%2e%2e/%2e%2e/secret.key"):
            assert client.get(bad).status_code == 404, bad
        favicon = client.get("/favicon.ico")
        assert favicon.status_code == 200 and favicon.content[:4] == b"\x00\x00\x01\x00"


# --- fetched by URL ------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    routes: ClassVar[dict[str, tuple[int, dict[str, str], bytes]]] = {}

    def do_GET(self) -> None:
        status, headers, body = self.routes.get(self.path, (404, {}, b""))
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def photo_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    _Handler.routes = {
        "/foto.jpg": (200, {"Content-Type": "image/jpeg"}, corpus.jpeg()),
        "/besar.jpg": (200, {}, b"\xff" * (LIMITS.max_bytes + 10)),
        "/ke-metadata": (302, {"Location": "http://169.254.169.254/latest/meta-data/"}, b""),
        "/ke-foto": (302, {"Location": "/foto.jpg"}, b""),
    }
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


def test_a_photo_url_is_fetched_once_and_normalised(settings: Settings,
                                                    photo_server: str) -> None:
    allowed = replace(settings, media_fetch_allow_loopback=True)
    data = fetch_photo(photo_server + "/ke-foto", allowed, LIMITS)
    assert data == corpus.jpeg()
    assert save_photo(media_store(allowed), data, LIMITS).startswith("/media/")
    with pytest.raises(MediaError) as caught:
        fetch_photo(photo_server + "/besar.jpg", allowed, LIMITS)
    assert caught.value.code == "media.too_big"


def test_fetching_refuses_private_addresses_and_redirects_to_them(
        settings: Settings, photo_server: str) -> None:
    with pytest.raises(MediaError) as caught:  # loopback without the test override
        fetch_photo(photo_server + "/foto.jpg", settings, LIMITS)
    assert caught.value.code == "media.fetch_refused"
    allowed = replace(settings, media_fetch_allow_loopback=True)
    with pytest.raises(MediaError) as caught:
        fetch_photo(photo_server + "/ke-metadata", allowed, LIMITS)
    assert caught.value.code == "media.fetch_refused"
    for url in ("http://10.0.0.5/x.jpg", "http://192.168.1.1/x.jpg", "http://[::1]/x.jpg",
                "http://169.254.169.254/", "file:///etc/passwd", "ftp://example.org/x.jpg",
                "http://[::ffff:127.0.0.1]/x.jpg", "http://0.0.0.0/x.jpg"):
        with pytest.raises(MediaError) as caught:
            check_url(url, allow_loopback=False)
        assert caught.value.code == "media.fetch_refused", url
    with pytest.raises(MediaError):
        check_url("http://10.0.0.5/x.jpg", allow_loopback=True)  # override = loopback only
