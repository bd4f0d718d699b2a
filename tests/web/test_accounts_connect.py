"""Issue 17: connecting social accounts from the dashboard (``dinas_admin`` only).

The browser is simulated step by step: the dashboard's redirect to the consent dialog
(served by the fake platform), the dialog's redirect back with ``code`` and ``state``,
and the callback. The fakes refuse bad codes, secrets and redirect URIs as the
platforms do, so a wrong exchange fails here as it would in production.
"""

from __future__ import annotations

import dataclasses
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from engine.config import Secret
from engine.models import AuditLog, SocialAccount
from engine.social import accounts
from tests.fake_meta import FakeMeta, fake_meta_fixture  # noqa: F401 - fixture
from tests.fake_meta_oauth import APP_ID, APP_SECRET
from tests.fake_tiktok import (  # noqa: F401 - fixture
    CLIENT_KEY,
    CLIENT_SECRET,
    FakeTikTokLogin,
    fake_tiktok_login_fixture,
)
from tests.web_helpers import World, csrf_from, post_form, world_fixture  # noqa: F401

BASE = "/dinas/akun-sosial/hubungkan"
PAGE_ID, IG_ID = "104857600", "17841400000000001"


@pytest.fixture(name="connect_world")
def connect_world_fixture(world: World, fake_meta: FakeMeta,
                          fake_tiktok_login: FakeTikTokLogin) -> World:
    """The world's app, talking to the fake Meta and TikTok servers."""
    settings = dataclasses.replace(
        world.settings, graph_url=fake_meta.base_url.rstrip("/"),
        meta_dialog_url=fake_meta.base_url, meta_app_id=APP_ID,
        meta_app_secret=Secret(APP_SECRET), tiktok_url=fake_tiktok_login.url,
        tiktok_auth_url=fake_tiktok_login.url, tiktok_client_key=CLIENT_KEY,
        tiktok_client_secret=Secret(CLIENT_SECRET))
    from web.app import create_app
    world.settings, world.app = settings, create_app(settings)
    fake_meta.oauth.add_page(PAGE_ID, "Dinas Koperasi UMKM TTS", instagram=IG_ID)
    fake_meta.oauth.add_page("200300400", "Pasar Soe", instagram=None)
    return world


def _start(client: TestClient, platform: str) -> str:
    """Click "Hubungkan ...": the dashboard answers with the consent dialog's URL."""
    started = post_form(client, f"{BASE}/{platform}", form_page=BASE)
    assert started.status_code == 303, started.text[:500]
    return str(started.headers["location"])


def _consent(dialog_url: str) -> str:
    """The platform's dialog, consent given: its redirect back, as a local path."""
    answer = httpx.get(dialog_url, follow_redirects=False)
    assert answer.status_code == 302, answer.text[:300]
    back = urlsplit(answer.headers["location"])
    return f"{back.path}?{back.query}"


def _stored(world: World, platform: str) -> SocialAccount | None:
    with world.session() as db:
        return db.scalars(select(SocialAccount)
                          .where(SocialAccount.platform == platform)).one_or_none()


def test_facebook_login_stores_the_long_lived_page_token_and_instagram(
        connect_world: World, fake_meta: FakeMeta) -> None:
    admin = connect_world.client("admin")
    dialog = _start(admin, "facebook")
    query = parse_qs(urlsplit(dialog).query)
    assert query["client_id"] == [APP_ID]
    assert "pages_manage_posts" in query["scope"][0] and "instagram_content_publish" in \
        query["scope"][0]
    assert query["redirect_uri"][0].endswith(f"{BASE}/facebook/kembali")
    callback = admin.get(_consent(dialog))
    assert callback.status_code == 200, callback.text[:800]
    assert "Dinas Koperasi UMKM TTS" in callback.text and "Pasar Soe" in callback.text
    assert "EAA" not in callback.text  # no token of any kind in the page
    assert fake_meta.count("GET", "oauth/access_token") == 2  # code, then fb_exchange_token

    chosen = admin.post(f"{BASE}/facebook/pilih", data={
        "page_id": PAGE_ID, "csrf_token": csrf_from(callback.text)})
    assert chosen.status_code == 200, chosen.text[:800]
    assert "facebook:dinas" in chosen.text and "instagram:dinas" in chosen.text
    assert "EAA" not in chosen.text
    facebook, instagram = _stored(connect_world, "facebook"), _stored(connect_world, "instagram")
    assert facebook is not None and instagram is not None
    assert (facebook.external_id, instagram.external_id) == (PAGE_ID, IG_ID)
    token = accounts.credentials(facebook).access_token
    assert fake_meta.oauth.page_tokens[token] == (PAGE_ID, True)  # from the long-lived token
    assert token not in (facebook.access_token_enc or "")  # encrypted at rest
    assert accounts.credentials(instagram).access_token == token
    with connect_world.session() as db:
        assert db.scalars(select(AuditLog.entity_id)
                          .where(AuditLog.action == "account.connect")).all()


def test_a_state_from_another_session_or_a_replay_is_refused(
        connect_world: World, fake_meta: FakeMeta) -> None:
    admin = connect_world.client("admin")
    back = _consent(_start(admin, "facebook"))
    other_admin = connect_world.client("admin")
    forged = other_admin.get(back)
    assert forged.status_code == 400 and "state" in forged.text
    assert fake_meta.count("GET", "oauth/access_token") == 0  # refused before any exchange
    assert admin.get(back).status_code == 200  # the real one, once
    replay = admin.get(back)
    assert replay.status_code == 400 and "sudah dipakai" in replay.text
    tampered = admin.get(_consent(_start(admin, "facebook")).replace("state=", "state=x"))
    assert tampered.status_code == 400 and "tidak cocok" in tampered.text
    assert _stored(connect_world, "facebook") is None


def test_denied_consent_and_a_bad_code_are_explained_never_a_500(
        connect_world: World, fake_meta: FakeMeta) -> None:
    admin = connect_world.client("admin")
    fake_meta.oauth.deny = True
    denied = admin.get(_consent(_start(admin, "facebook")))
    assert denied.status_code == 400 and "Izin tidak diberikan" in denied.text
    fake_meta.oauth.deny = False
    back = _consent(_start(admin, "facebook"))
    bad = admin.get(back.replace("code=", "code=zz"))
    assert bad.status_code == 400 and "Penukaran kode Facebook ditolak" in bad.text
    assert "Invalid verification code" in bad.text
    assert _stored(connect_world, "facebook") is None


def test_a_wrong_app_secret_is_refused_by_the_fake_like_graph(
        connect_world: World) -> None:
    connect_world.app.state.settings = dataclasses.replace(
        connect_world.settings, meta_app_secret=Secret("salah"))
    admin = connect_world.client("admin")
    refused = admin.get(_consent(_start(admin, "facebook")))
    assert refused.status_code == 400 and "client secret" in refused.text


def test_tiktok_login_stores_both_tokens_with_their_expiry(
        connect_world: World, fake_tiktok_login: FakeTikTokLogin) -> None:
    admin = connect_world.client("admin")
    dialog = _start(admin, "tiktok")
    query = parse_qs(urlsplit(dialog).query)
    assert query["client_key"] == [CLIENT_KEY] and query["response_type"] == ["code"]
    assert set(query["scope"][0].split(",")) == {"user.info.basic", "video.publish",
                                                 "video.upload"}
    back = _consent(dialog)
    done = admin.get(back)
    assert done.status_code == 200, done.text[:800]
    assert "tiktok:dinas" in done.text and "UMKM TTS Resmi" in done.text
    row = _stored(connect_world, "tiktok")
    assert row is not None and row.external_id == "fake-open-id"
    access, refresh, expires_at = accounts.stored_tokens(row)
    assert access in fake_tiktok_login.access_tokens
    assert refresh in fake_tiktok_login.refresh_tokens
    assert expires_at is not None
    assert access not in done.text and refresh not in done.text
    assert admin.get(back).status_code == 400  # the state was spent


def test_tiktok_refuses_a_spent_code_and_denied_consent(
        connect_world: World, fake_tiktok_login: FakeTikTokLogin) -> None:
    admin = connect_world.client("admin")
    fake_tiktok_login.deny = True
    denied = admin.get(_consent(_start(admin, "tiktok")))
    assert denied.status_code == 400 and "Izin tidak diberikan" in denied.text
    fake_tiktok_login.deny = False
    back = _consent(_start(admin, "tiktok"))
    fake_tiktok_login.codes.clear()  # the code expired at TikTok
    expired = admin.get(back)
    assert expired.status_code == 400 and "Penukaran kode TikTok ditolak" in expired.text
    assert _stored(connect_world, "tiktok") is None


def _whatsapp(client: TestClient, phone: str, token: str) -> Any:
    return post_form(client, f"{BASE}/whatsapp",
                     {"phone_number_id": phone, "access_token": token}, form_page=BASE)


def test_whatsapp_form_is_checked_with_graph_before_saving(
        connect_world: World, fake_meta: FakeMeta) -> None:
    fake_meta.oauth.add_phone("109876543210", "+62 812-3456-7890", "Dinas UMKM TTS",
                              "EAAwa-system-user-token")
    admin = connect_world.client("admin")
    wrong = _whatsapp(admin, "109876543210", "EAAwa-salah-ketik")
    assert wrong.status_code == 400 and "Pemeriksaan nomor WhatsApp ditolak" in wrong.text
    assert "EAAwa-salah-ketik" not in wrong.text  # never echoed back
    assert _whatsapp(admin, "12ab", "x").status_code == 400
    saved = _whatsapp(admin, "109876543210", "  EAAwa-system-user-token \n")
    assert saved.status_code == 200, saved.text[:800]
    assert "+62 812-3456-7890" in saved.text and "EAAwa-system" not in saved.text
    row = _stored(connect_world, "whatsapp")
    assert row is not None and row.external_id == "109876543210"
    assert accounts.credentials(row).access_token == "EAAwa-system-user-token"


def test_only_dinas_admins_may_connect(connect_world: World, fake_meta: FakeMeta) -> None:
    for username in ("staf", "pemilik-a"):
        client = connect_world.client(username)
        assert client.get(BASE).status_code == 403
        refused = client.get(f"{BASE}/facebook/kembali?code=x&state=y")
        assert refused.status_code == 403 and "Hanya admin Dinas" in refused.text
    staff = connect_world.client("staf")
    forged = post_form(staff, f"{BASE}/whatsapp", {"phone_number_id": "1",
                                                    "access_token": "t"}, form_page="/dinas")
    assert forged.status_code == 403
    assert fake_meta.requests == []
    assert connect_world.client("admin").get(BASE).status_code == 200
