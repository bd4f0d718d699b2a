"""Issue 13 findings 6 and 7: server-side sessions and a login limit that holds under load.

* A copied session cookie is refused after logout, after a password change and after the
  account was disabled (even once it is enabled again): the server revokes the session.
* The cookie is an opaque random id: no username, role or CSRF token can be read from it,
  and the database keeps only its hash.
* 25 parallel wrong passwords against a real uvicorn server on loopback: at most the
  limit (5) reach the password check. Every checked password leaves one
  ``auth.login_failed`` audit row, so the audit log counts the hash verifications
  without patching the engine.
* Many user names from one address are throttled; a global cap stops spraying.

Every test runs on SQLite and PostgreSQL (the ``settings`` fixture).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import re
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from engine.models import AuditLog, LoginAttempt, User, WebSessionRecord
from engine.umkm import login_limit, users
from engine.umkm.sessions import hash_id
from tests.web_helpers import (
    PASSWORD,
    World,
    csrf,
    csrf_from,
    login,
    world_fixture,  # noqa: F401 - the "world" fixture
)

COOKIE = "umkm_sesi"


def copy_of(world: World, client: TestClient) -> TestClient:
    """A second browser holding a stolen copy of ``client``'s session cookie."""
    value = client.cookies.get(COOKIE)
    assert value
    thief = TestClient(world.app)
    thief.cookies.set(COOKIE, value)
    assert thief.get("/portal", follow_redirects=False).status_code == 200  # it works now
    return thief


def refused(client: TestClient) -> bool:
    response = client.get("/portal", follow_redirects=False)
    return bool(response.status_code == 303
                and response.headers["location"].startswith("/login"))


def failed_checks(world: World, username: str | None = None) -> int:
    """How many passwords were verified and wrong (one audit row per Argon2 verify)."""
    with world.session() as session:
        query = select(func.count()).select_from(AuditLog).where(
            AuditLog.action == "auth.login_failed")
        if username is not None:
            query = query.where(AuditLog.actor == username)
        return int(session.scalar(query) or 0)


# --- a copied cookie dies with the session ----------------------------------------------


def test_copied_cookie_is_refused_after_logout(world: World) -> None:
    owner = world.client("pemilik-a")
    thief = copy_of(world, owner)
    token = csrf(owner, "/portal")
    assert owner.post("/logout", data={"csrf_token": token},
                      follow_redirects=False).status_code == 303
    assert refused(thief)


def test_copied_cookie_is_refused_after_password_change(world: World) -> None:
    owner = world.client("pemilik-a")
    thief = copy_of(world, owner)
    token = csrf(owner, "/akun/sandi")
    response = owner.post("/akun/sandi", data={
        "csrf_token": token, "old_password": PASSWORD, "new_password": "sandi-baru-789",
        "new_password2": "sandi-baru-789"})
    assert response.status_code == 200
    assert owner.get("/portal").status_code == 200  # the changer got a fresh session
    assert refused(thief)


def test_copied_cookie_is_refused_after_the_user_was_disabled(world: World) -> None:
    owner = world.client("pemilik-a")
    thief = copy_of(world, owner)
    with world.session() as session:
        user = users.get_user(session, "pemilik-a")
        users.set_active(session, user, False, actor="admin")
        session.commit()
        users.set_active(session, user, True, actor="admin")  # enabled again: still revoked
        session.commit()
        revoked = session.scalars(select(WebSessionRecord).where(
            WebSessionRecord.user_id == user.id)).all()
        assert revoked and all(r.revoked_at is not None for r in revoked)
    assert refused(thief)
    assert refused(owner)


def test_cookie_is_an_opaque_id_with_no_readable_user_data(world: World) -> None:
    owner = world.client("staf")
    value = owner.cookies.get(COOKIE)
    assert value and re.fullmatch(r"[A-Za-z0-9_-]{43}", value), value
    readable = [value]
    for part in value.split("."):
        with contextlib.suppress(binascii.Error, ValueError):
            readable.append(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
                            .decode("latin-1"))
    token = csrf(owner, "/dinas")
    for text in readable:
        for secret in ("staf", "dinas_staff", token, '"u"'):
            assert secret not in text
    with world.session() as session:
        user_id = session.scalar(select(User.id).where(User.username == "staf"))
        stored = session.scalars(select(WebSessionRecord.id_hash).where(
            WebSessionRecord.user_id == user_id)).all()
    assert stored == [hash_id(value)] and value not in stored  # only the hash is stored


# --- login throttling under concurrency -------------------------------------------------


@pytest.fixture
def live_url(world: World) -> Iterator[str]:
    """The world's app served by uvicorn on loopback (real sockets, real thread pool)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = uvicorn.Server(uvicorn.Config(world.app, log_level="warning", lifespan="off",
                                           access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def _parallel_logins(url: str, usernames: list[str]) -> list[int]:
    """Each login from its own browser, all POSTs released together by a barrier."""
    barrier = threading.Barrier(len(usernames))

    def attempt(username: str) -> int:
        with httpx.Client(base_url=url, timeout=60) as client:
            token = csrf_from(client.get("/login").text)
            barrier.wait(timeout=60)
            response = client.post("/login", data={"username": username,
                                                   "password": "tebakan-salah",
                                                   "csrf_token": token})
            return response.status_code

    with ThreadPoolExecutor(max_workers=len(usernames)) as pool:
        return list(pool.map(attempt, usernames))


def test_parallel_wrong_passwords_reach_the_hash_at_most_limit_times(
        world: World, live_url: str) -> None:
    codes = _parallel_logins(live_url, ["pemilik-a"] * 25)
    checked = failed_checks(world, "pemilik-a")
    assert checked <= login_limit.PER_USERNAME, f"{checked} passwords were verified"
    assert codes.count(401) == checked and codes.count(429) == 25 - checked
    # ... and the right password waits too, until the window has passed.
    assert login(world.client(), "pemilik-a").status_code == 429


def test_many_usernames_from_one_address_are_throttled(world: World) -> None:
    client = world.client()
    codes = [login(client, f"tebak-{n}", "tebakan-salah").status_code for n in range(24)]
    assert codes[:login_limit.PER_ADDRESS] == [401] * login_limit.PER_ADDRESS
    assert set(codes[login_limit.PER_ADDRESS:]) == {429}
    assert failed_checks(world) == login_limit.PER_ADDRESS
    blocked = login(client, "pemilik-b")
    assert blocked.status_code == 429 and "Terlalu banyak percobaan masuk" in blocked.text
    # Another address is not affected by this one.
    with TestClient(world.app, client=("10.1.2.3", 40000)) as other:
        assert login(other, "pemilik-b").status_code == 303


def test_a_global_cap_stops_password_spraying(world: World) -> None:
    with world.session() as session:
        for _ in range(login_limit.GLOBAL):
            login_limit.bump(session, login_limit.GLOBAL_KEY)
        session.commit()
    with TestClient(world.app, client=("10.9.9.9", 40000)) as fresh:
        blocked = login(fresh, "pemilik-b", "tebakan-salah")
    assert blocked.status_code == 429
    assert failed_checks(world) == 0


def test_a_successful_login_resets_the_username_counter(world: World) -> None:
    client = world.client()
    for _ in range(login_limit.PER_USERNAME - 1):
        assert login(client, "pemilik-a", "tebakan-salah").status_code == 401
    assert login(client, "pemilik-a").status_code == 303
    with world.session() as session:
        key = login_limit.username_key("pemilik-a")
        assert session.get(LoginAttempt, key) is None
    for _ in range(login_limit.PER_USERNAME - 1):
        assert login(world.client(), "pemilik-a", "tebakan-salah").status_code == 401
