"""The web edge against hostile requests (issue 13, findings 3, 5, 9 and 10).

3. the WhatsApp webhook fails closed: unsigned posts only in sandbox mode, and a
   production web app does not start without its secrets;
5. request bodies are bounded while streaming (a real server on loopback is sent 200 MB
   and its memory is watched) and JSON nesting is bounded (never ``RecursionError``);
9. malformed path parameters (huge, negative, non-numeric ids) get 4xx on every route;
10. every response carries the security headers; the API docs are local and for Dinas
    staff only.
"""

from __future__ import annotations

import asyncio
import json
import re
import select
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy import select as sql_select

from engine.common.production import UnsafeSettings
from engine.config import Secret, Settings
from engine.models import Consent
from engine.umkm.apikeys import issue_api_key
from tests.factories import make_customer
from tests.web_helpers import (
    World,
    csrf,
    world_fixture,  # noqa: F401 - the "world" fixture
)
from web.app import create_app

TEMPLATES = Path(__file__).resolve().parents[2] / "web" / "templates"
PHONE = "6281234567001"


def _wa_body(phone: str, text: str) -> bytes:
    return json.dumps({"object": "whatsapp_business_account", "entry": [{
        "id": "WABA-1", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp", "metadata": {"phone_number_id": "PN-1"},
            "contacts": [{"wa_id": phone, "profile": {"name": "Pelanggan"}}],
            "messages": [{"from": phone, "id": "wamid.FORGED", "timestamp": str(int(time.time())),
                          "type": "text", "text": {"body": text}}]}}]}]}).encode()


# --- finding 3: the WhatsApp webhook fails closed ------------------------------------------


def test_production_web_app_refuses_to_start_without_the_whatsapp_secret(
        settings: Settings) -> None:
    live = replace(settings, social_mode="live")
    with pytest.raises(UnsafeSettings) as refused:
        create_app(live)
    assert "UMKM_WA_APP_SECRET" in str(refused.value)
    assert "mode produksi" in str(refused.value)
    create_app(replace(live, whatsapp_app_secret=Secret("rahasia-meta")))  # starts


def test_unsigned_whatsapp_stop_is_refused_in_production_and_accepted_in_sandbox(
        world: World) -> None:
    with world.session() as db:
        make_customer(db, phone=PHONE, name="Pelanggan", marketing=True)
        db.commit()
    forged: dict[str, Any] = {"content": _wa_body(PHONE, "BERHENTI"),
                              "headers": {"Content-Type": "application/json"}}
    client = world.client()
    # Production settings without a secret (as if the start-up check were bypassed),
    # and with one: an unsigned or wrongly signed post changes nothing.
    for secret in ("", "rahasia-meta"):
        world.app.state.settings = replace(world.settings, social_mode="live",
                                           whatsapp_app_secret=Secret(secret))
        assert client.post("/webhooks/whatsapp", **forged).status_code == 403
        signed_wrong = {**forged["headers"], "X-Hub-Signature-256": "sha256=" + "0" * 64}
        assert client.post("/webhooks/whatsapp", content=forged["content"],
                           headers=signed_wrong).status_code == 403
    with world.session() as db:
        assert not db.scalars(sql_select(Consent).where(Consent.channel == "whatsapp")).all()
    world.app.state.settings = world.settings  # sandbox, no secret: the demo works
    accepted = client.post("/webhooks/whatsapp", **forged)
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["opt_outs"] == 1


# --- finding 5: bodies bounded while streaming, JSON depth bounded ---------------------------


def _rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


class _PeakRss:
    """The highest RSS of this process (the server runs in it) while the block runs."""

    def __init__(self) -> None:
        self.peak = self.base = _rss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, _rss_bytes())

    def __enter__(self) -> _PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_bytes())


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[tuple[str, int]]:
    """The app in a real uvicorn on a free loopback port, in a thread of this process."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(Settings(var_dir=str(tmp_path))),
                                           log_level="warning", lifespan="off"))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])),
                              daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.02)
    yield sock.getsockname()
    server.should_exit = True
    thread.join(10)
    sock.close()


def _stream(address: tuple[str, int], path: str, total: int, chunk: int = 64 * 1024) -> bytes:
    """POST ``total`` bytes chunked, stopping as soon as the server answers; the reply."""
    conn = socket.create_connection(address, timeout=60)
    conn.sendall(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json"
                 "\r\nTransfer-Encoding: chunked\r\n\r\n".encode())
    block = f"{chunk:x}\r\n".encode() + b"7" * chunk + b"\r\n"
    sent = 0
    try:
        while sent < total:
            if select.select([conn], [], [], 0)[0]:
                break  # the server has answered: stop sending
            conn.sendall(block)
            sent += chunk
        else:
            conn.sendall(b"0\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass
    reply = b""
    try:
        while b"\r\n\r\n" not in reply:
            data = conn.recv(65536)
            if not data:
                break
            reply += data
    except ConnectionResetError:
        pass
    conn.close()
    return reply


@pytest.mark.parametrize("path", ["/webhooks/whatsapp", "/login", "/api/v1/orders"])
def test_a_200_mb_streamed_body_gets_413_without_the_server_holding_it(
        live_server: tuple[str, int], path: str) -> None:
    with _PeakRss() as rss:
        reply = _stream(live_server, path, 200 * 1024 * 1024)
    assert reply.startswith(b"HTTP/1.1 413"), reply[:200]
    assert rss.peak - rss.base < 40 * 1024 * 1024, (rss.base, rss.peak)


def test_a_declared_oversized_body_is_refused_before_it_is_read(world: World) -> None:
    response = world.client().post("/login", content=b"x" * (1024 * 1024 + 1),
                                   headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 413
    assert "terlalu besar" in response.text


@pytest.mark.parametrize("path", ["/webhooks/whatsapp", "/api/v1/orders", "/webhooks/bounce"])
def test_deeply_nested_json_gets_a_clear_422_never_a_500(world: World, path: str) -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    response = world.client().post(path, content=deep,
                                   headers={"Content-Type": "application/json"})
    assert response.status_code == 422, response.text[:300]
    assert "terlalu dalam" in response.json()["detail"][0]["msg"]


def test_ordinary_json_nesting_still_reaches_the_route(world: World) -> None:
    shallow = json.dumps({"a": [[[{"b": "[[[[[[" * 50}]]]}).encode()  # brackets in strings
    response = world.client().post("/webhooks/whatsapp", content=shallow,
                                   headers={"Content-Type": "application/json"})
    assert response.status_code == 200, response.text


# --- finding 9: malformed path parameters never give 5xx ------------------------------------


BAD_IDS = ("99999999999999999999999", str(2**63), str(2**63 - 1), "-1", "-99999999999999999999",
           "0", "abc", "1e5", "%20")


def _routes_with_params(app: FastAPI) -> list[tuple[str, str]]:
    return [(method, route.path) for route in iter_route_contexts(app.routes)
            for method in sorted(route.methods or ())
            if route.path and "{" in route.path and method != "HEAD"]


def test_every_route_with_a_path_parameter_answers_bad_ids_with_4xx(world: World) -> None:
    with world.session() as db:
        key = issue_api_key(db, world.ids["business_a"])
        db.commit()
    clients = {name: world.client(name) for name in ("staf", "pemilik-a")}
    tokens = {name: csrf(client, "/akun/sandi") for name, client in clients.items()}
    routes = _routes_with_params(world.app)
    assert len(routes) >= 15
    for name, client in clients.items():
        for method, template in routes:
            for bad in BAD_IDS:
                path = re.sub(r"\{\w+\}", bad, template)
                if method == "GET":
                    response = client.get(path, follow_redirects=False)
                elif template.startswith("/api/"):
                    response = client.post(path, json={}, headers={
                        "Authorization": f"Bearer {key}"})
                else:
                    response = client.post(path, data={"csrf_token": tokens[name]},
                                           follow_redirects=False)
                assert response.status_code < 500, (name, method, path, response.status_code)


# --- finding 10: security headers, local staff-only API docs ---------------------------------


def _assert_security_headers(response: Any, https: bool = False) -> None:
    csp = response.headers.get("content-security-policy", "")
    assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert response.headers.get("x-frame-options") == "DENY"
    assert response.headers.get("x-content-type-options") == "nosniff"
    assert response.headers.get("referrer-policy")
    assert ("strict-transport-security" in response.headers) is https


def test_every_response_carries_the_security_headers(world: World) -> None:
    staff = world.client("staf")
    for path in ("/dinas", "/produk", "/login", "/static/style.css", "/tidak-ada"):
        _assert_security_headers(staff.get(path, follow_redirects=False))
    _assert_security_headers(world.client().post(
        "/webhooks/whatsapp", content=b"x" * (2 * 1024 * 1024)))  # 413 from the middleware
    with TestClient(world.app, base_url="https://testserver") as secure:
        _assert_security_headers(secure.get("/produk"), https=True)


def test_templates_need_no_inline_script_or_style() -> None:
    """What lets the CSP forbid inline code: nothing in the templates relies on it.

    A JSON-LD data block (``type="application/ld+json"``) is no script: browsers never run
    it, so the CSP does not need to allow it."""
    inline = re.compile(r'<script(?![^>]*\b(?:src=|type="application/ld\+json"))[^>]*>'
                        r"|<style\b|\sstyle=|\son[a-z]+=", re.I)
    offenders = [f"{p.name}: {m.group()}" for p in sorted(TEMPLATES.glob("*.html"))
                 for m in inline.finditer(p.read_text())]
    assert not offenders


@pytest.mark.parametrize("path", ["/docs", "/redoc", "/openapi.json"])
def test_api_docs_are_local_and_for_dinas_staff_only(world: World, path: str) -> None:
    anonymous = world.client().get(path, follow_redirects=False)
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login")
    assert world.client("pemilik-a").get(path, follow_redirects=False).status_code == 403
    staff = world.client("staf").get(path)
    assert staff.status_code == 200
    assert "cdn" not in staff.text.lower() and "<script" not in staff.text
    if path == "/openapi.json":
        assert "/api/v1/orders" in staff.json()["paths"]
    else:
        assert "/api/v1/orders" in staff.text
