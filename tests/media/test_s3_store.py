"""The S3 photo store against a real S3-protocol server (moto) on loopback.

moto speaks the same HTTP wire protocol as AWS, MinIO or Wasabi, so these tests exercise
boto3's real requests (signing, headers, error codes) without a network or an account.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import boto3
import pytest
from fastapi.testclient import TestClient
from moto.server import ThreadedMotoServer

from engine.config import Secret, Settings
from engine.media.errors import MediaStoreNotConfigured
from engine.media.images import Limits
from engine.media.s3 import CACHE_CONTROL, S3Store
from engine.media.store import media_store, save_photo, variant_key
from tests.media import corpus
from web.app import create_app

LIMITS = Limits(max_bytes=2 * 1024 * 1024, max_pixels=40_000_000)
BUCKET = "foto-umkm"
KEY = variant_key("ab" * 32, "square")


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_settings(settings: Settings, endpoint: str) -> Settings:
    configured = replace(settings, media_store="s3", media_s3_bucket=BUCKET,
                         media_s3_endpoint_url=endpoint, media_s3_region="us-east-1",
                         media_s3_access_key=Secret("testing"),
                         media_s3_secret_key=Secret("testing"))
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    existing = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
    if BUCKET not in existing:
        client.create_bucket(Bucket=BUCKET)
    return configured


def test_put_get_delete_round_trip(s3_settings: Settings) -> None:
    store = media_store(s3_settings)
    assert isinstance(store, S3Store)
    store.put(KEY, b"\xff\xd8\xffjpeg")
    assert store.get(KEY) == b"\xff\xd8\xffjpeg"
    head = store.client.head_object(Bucket=BUCKET, Key=KEY)
    assert head["ContentType"] == "image/jpeg" and head["CacheControl"] == CACHE_CONTROL
    assert store.url_for(KEY) == "/media/" + KEY  # served through the site, own domain
    store.delete(KEY)
    assert store.get(KEY) is None
    assert store.get("../../etc/passwd") is None
    with pytest.raises(ValueError):
        store.put("../x.jpg", b"x")


def test_a_public_base_url_is_used_for_links(s3_settings: Settings) -> None:
    store = media_store(replace(s3_settings, media_s3_public_base_url="https://cdn.example/f/"))
    assert store.url_for(KEY) == "https://cdn.example/f/" + KEY


def test_a_saved_photo_is_served_through_the_media_route(s3_settings: Settings) -> None:
    path = save_photo(media_store(s3_settings), corpus.jpeg(), LIMITS)
    with TestClient(create_app(s3_settings)) as client:
        response = client.get(path)
        assert response.status_code == 200
        assert response.headers["content-type"] == "image/jpeg"
        assert response.content[:3] == b"\xff\xd8\xff"
        assert client.get("/media/" + "0" * 64 + "/square.jpg").status_code == 404


def test_a_missing_bucket_is_a_clear_indonesian_error(s3_settings: Settings) -> None:
    missing = replace(s3_settings, media_s3_bucket="tidak-ada")
    with pytest.raises(MediaStoreNotConfigured) as caught:
        media_store(missing).put(KEY, b"x")
    assert "Bucket foto \"tidak-ada\" tidak dapat dipakai" in str(caught.value)
    assert "NoSuchBucket" in str(caught.value)
    with TestClient(create_app(missing), raise_server_exceptions=False) as client:
        response = client.get("/media/" + KEY)
    assert response.status_code == 503
    assert "tidak dapat dipakai" in response.text


def test_no_bucket_name_is_refused_at_once(settings: Settings) -> None:
    with pytest.raises(MediaStoreNotConfigured) as caught:
        media_store(replace(settings, media_store="s3"))
    assert "MEDIA_S3_BUCKET" in str(caught.value)
