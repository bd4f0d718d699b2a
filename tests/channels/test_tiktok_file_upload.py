"""TikTok FILE_UPLOAD: the chunk plan, the PUTs, and a fake that refuses what TikTok refuses."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import httpx
import pytest

from channels.base import MemorySocialHooks, SendStatus
from channels.tiktok_upload import MB, ChunkPlan, plan_chunks
from tests.channels.test_tiktok import make, message
from tests.fake_http import Reply
from tests.fake_tiktok import (
    CREATOR_INFO,
    STATUS_FETCH,
    UPLOAD,
    VIDEO_INIT,
    FakeTikTok,
    chunk_rule_problem,
    fake_tiktok_fixture,  # noqa: F401  (provides the ``fake_tiktok`` fixture)
)

MP4_HEAD = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2"
VIDEO = {"caption": "Madu hutan Mollo", "media_type": "video", "product_id": 8,
         "business_id": 4}


def mp4_file(tmp_path: Path, size: int, head: bytes = MP4_HEAD, name: str = "madu.mp4") -> Path:
    path = tmp_path / name
    with path.open("wb") as handle:
        handle.write(head)
        handle.write(bytes(range(256)) * ((size - len(head)) // 256))
        handle.write(b"\x07" * ((size - len(head)) % 256))
    assert path.stat().st_size == size
    return path


# --------------------------------------------------------------------------- the plan


@pytest.mark.parametrize(("size", "chunk", "count"), [
    (1, 1, 1),
    (int(4.9 * MB), int(4.9 * MB), 1),  # under 5 MB: whole
    (5 * MB - 1, 5 * MB - 1, 1),
    (5 * MB, 5 * MB, 1),  # exactly 5 MB: one chunk of 5 MB
    (12 * MB, 12 * MB, 1),  # under two chunks and at most 64 MB: whole
    (20 * MB, 10 * MB, 2),
    (25 * MB + 3, 10 * MB, 2),  # the final chunk takes the trailing 5 MB + 3 bytes
    (64 * MB, 10 * MB, 6),
    (64 * MB + 1, 10 * MB, 6),
    (130 * MB, 10 * MB, 13),
    (4 * 1024 * MB, 10 * MB, 409),
])
def test_chunk_plan_at_the_documented_boundaries(size: int, chunk: int, count: int) -> None:
    plan = plan_chunks(size)
    assert (plan.chunk_size, plan.total_chunk_count) == (chunk, count)
    assert chunk_rule_problem(size, plan.chunk_size, plan.total_chunk_count) is None
    ranges = list(plan.ranges())
    assert ranges[0][0] == 0 and ranges[-1][1] == size - 1
    assert all(b[0] == a[1] + 1 for a, b in itertools.pairwise(ranges))
    assert all(last - first + 1 == chunk for first, last in ranges[:-1])
    assert ranges[-1][1] - ranges[-1][0] + 1 <= 128 * MB


@pytest.mark.parametrize("preferred", [1 * MB, 64 * MB, 200 * MB])
def test_chunk_plan_keeps_to_the_rules_whatever_chunk_is_preferred(preferred: int) -> None:
    for size in (5 * MB, 63 * MB, 64 * MB + 1, 100 * MB, 127 * MB, 130 * MB, 1000 * MB):
        plan = plan_chunks(size, preferred)
        assert chunk_rule_problem(size, plan.chunk_size, plan.total_chunk_count) is None, \
            (size, plan)


def test_the_fake_refuses_plans_tiktok_refuses() -> None:
    assert chunk_rule_problem(4 * MB, 2 * MB, 2)  # under 5 MB must go whole
    assert chunk_rule_problem(20 * MB, 4 * MB, 5)  # chunk under 5 MB
    assert chunk_rule_problem(200 * MB, 65 * MB, 3)  # chunk over 64 MB
    assert chunk_rule_problem(25 * MB, 10 * MB, 3)  # count must be rounded down
    assert chunk_rule_problem(70 * MB, 70 * MB, 1)  # over 64 MB in one chunk
    assert chunk_rule_problem(200 * MB, 60 * MB, 1)  # final chunk 200 MB
    assert chunk_rule_problem(7 * MB, None, 1)


# --------------------------------------------------------------------------- the adapter


def test_a_video_is_posted_with_file_upload_in_documented_chunks(
    fake_tiktok: FakeTikTok, tmp_path: Path,
) -> None:
    video = mp4_file(tmp_path, 12 * MB + 5)
    hooks = MemorySocialHooks()
    channel, _ = make(fake_tiktok, hooks, chunk_size=5 * MB)
    with channel:
        result = channel.send(message({**VIDEO, "video_path": str(video)}))

    assert result.status is SendStatus.SENT, result.error
    init = fake_tiktok.calls(VIDEO_INIT)[0].json()
    assert init["source_info"] == {"source": "FILE_UPLOAD", "video_size": 12 * MB + 5,
                                   "chunk_size": 5 * MB, "total_chunk_count": 2}
    puts = fake_tiktok.calls(UPLOAD)
    assert [p.headers["content-range"] for p in puts] == [
        f"bytes 0-{5 * MB - 1}/{12 * MB + 5}", f"bytes {5 * MB}-{12 * MB + 4}/{12 * MB + 5}"]
    assert all(p.method == "PUT" and p.headers["content-type"] == "video/mp4" for p in puts)
    assert b"".join(p.body for p in puts) == video.read_bytes()
    assert [r.path for r in fake_tiktok.requests] == [
        CREATOR_INFO, VIDEO_INIT, UPLOAD, UPLOAD, STATUS_FETCH, STATUS_FETCH]
    assert hooks.load_state(1)["uploaded"] is True
    assert result.raw["status"] == "PUBLISH_COMPLETE"


def test_a_small_video_goes_whole_in_one_put(fake_tiktok: FakeTikTok, tmp_path: Path) -> None:
    video = mp4_file(tmp_path, int(4.9 * MB))
    channel, _ = make(fake_tiktok, MemorySocialHooks())
    assert channel.send(message({**VIDEO, "video_path": str(video)})).ok
    assert fake_tiktok.count(UPLOAD) == 1
    assert fake_tiktok.calls(VIDEO_INIT)[0].json()["source_info"]["chunk_size"] == int(4.9 * MB)


def test_a_file_that_is_not_mp4_is_refused_before_any_call(
    fake_tiktok: FakeTikTok, tmp_path: Path,
) -> None:
    mov = mp4_file(tmp_path, 1000, head=b"\x00\x00\x00\x14ftypqt  \x00\x00\x00\x00",
                   name="madu.mov")
    channel, _ = make(fake_tiktok, MemorySocialHooks())
    for path in (mov, tmp_path / "missing.mp4"):
        result = channel.send(message({**VIDEO, "video_path": str(path)}))
        assert result.status is SendStatus.PERMANENT, result.error
    assert fake_tiktok.requests == []


def test_an_interrupted_upload_is_retried_with_a_new_init(
    fake_tiktok: FakeTikTok, tmp_path: Path,
) -> None:
    video = mp4_file(tmp_path, 11 * MB)
    hooks = MemorySocialHooks()
    channel, _ = make(fake_tiktok, hooks, chunk_size=5 * MB)
    fake_tiktok.enqueue(UPLOAD, Reply(206, {}), Reply(503, {}))
    first = channel.send(message({**VIDEO, "video_path": str(video)}))
    assert first.status is SendStatus.TRANSIENT
    assert hooks.load_state(1)["uploaded"] is False

    second = channel.send(message({**VIDEO, "video_path": str(video)}))

    assert second.ok, second.error
    assert fake_tiktok.count(VIDEO_INIT) == 2  # the first publish never got its file


def test_a_refused_chunk_fails_the_post(fake_tiktok: FakeTikTok, tmp_path: Path) -> None:
    video = mp4_file(tmp_path, 6 * MB)
    channel, _ = make(fake_tiktok, MemorySocialHooks())
    fake_tiktok.enqueue(UPLOAD, Reply(416, {}))
    result = channel.send(message({**VIDEO, "video_path": str(video)}))
    assert result.status is SendStatus.PERMANENT
    assert "potongan video" in (result.error or "")
    assert fake_tiktok.count(STATUS_FETCH) == 0


# --------------------------------------------------------------------------- the fake


def _init(fake: FakeTikTok, size: int, chunk: int, count: int) -> dict[str, Any]:
    access, _ = fake.issue_tokens()
    response = httpx.post(fake.url + VIDEO_INIT, headers={"Authorization": f"Bearer {access}"},
                          json={"post_info": {"title": "x", "privacy_level": "SELF_ONLY"},
                                "source_info": ChunkPlan(size, chunk, count).source_info()})
    document: dict[str, Any] = response.json()
    return document


def _status(fake: FakeTikTok, publish_id: str) -> str:
    access, _ = fake.issue_tokens()
    response = httpx.post(fake.url + STATUS_FETCH, headers={"Authorization": f"Bearer {access}"},
                          json={"publish_id": publish_id})
    return str(response.json()["data"]["status"])


def _put(url: str, body: bytes, content_range: str, kind: str = "video/mp4") -> int:
    return httpx.put(url, content=body, headers={"Content-Type": kind,
                                                 "Content-Range": content_range}).status_code


def test_the_fake_refuses_a_wrong_content_range_and_waits_for_every_chunk(
    fake_tiktok: FakeTikTok,
) -> None:
    size = 11 * MB
    data = MP4_HEAD + bytes(size - len(MP4_HEAD))
    answer = _init(fake_tiktok, size, 5 * MB, 2)["data"]
    url, publish_id = answer["upload_url"], answer["publish_id"]
    first, rest = data[:5 * MB], data[5 * MB:]

    assert _put(url, first, f"bytes 0-{5 * MB}/{size}") == 416  # last byte off by one
    assert _put(url, first, f"bytes 0-{5 * MB - 1}/{size + 1}") == 416  # wrong total
    assert _put(url, rest, f"bytes {5 * MB}-{size - 1}/{size}") == 416  # out of order
    assert _put(url, first, f"bytes 0-{5 * MB - 1}/{size}", "video/quicktime") == 400
    assert _put(url.replace("upload-token", "guessed"), first,
                f"bytes 0-{5 * MB - 1}/{size}") == 404
    assert _put(url, first, f"bytes 0-{5 * MB - 1}/{size}") == 206
    for _ in range(3):  # a chunk is missing: never published
        assert _status(fake_tiktok, publish_id) == "PROCESSING_UPLOAD"
    assert _put(url, rest, f"bytes {5 * MB}-{size - 1}/{size}") == 201
    assert _put(url, rest, f"bytes {5 * MB}-{size - 1}/{size}") == 416  # nothing left
    assert _status(fake_tiktok, publish_id) == "PROCESSING_DOWNLOAD"
    assert _status(fake_tiktok, publish_id) == "PUBLISH_COMPLETE"


def test_the_fake_refuses_a_bad_init_and_fails_bytes_that_are_not_mp4(
    fake_tiktok: FakeTikTok,
) -> None:
    refused = _init(fake_tiktok, 25 * MB, 10 * MB, 3)
    assert refused["error"]["code"] == "invalid_params"
    assert "rounded down" in refused["error"]["message"]
    answer = _init(fake_tiktok, 1000, 1000, 1)["data"]
    assert _put(answer["upload_url"], b"\x89PNG" + bytes(996), "bytes 0-999/1000") == 201
    assert _status(fake_tiktok, answer["publish_id"]) == "FAILED"
