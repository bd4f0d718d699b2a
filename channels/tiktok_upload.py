"""TikTok ``FILE_UPLOAD``: how a local video is cut into chunks and sent to ``upload_url``.

Why a plan computed before the init (TikTok Media Transfer Guide): the init announces
``video_size``, ``chunk_size`` and ``total_chunk_count`` and TikTok refuses an init or a
chunk that breaks its rules, so the byte ranges of every ``PUT`` follow from the same
three numbers:

* ``total_chunk_count`` = ``video_size // chunk_size`` (rounded down); the trailing bytes
  join the final chunk, which may thus exceed ``chunk_size`` (up to 128 MB);
* every chunk is 5 MB .. 64 MB; a video under 5 MB goes whole (``chunk_size`` equals
  the video), a video over 64 MB in several chunks; 1 .. 1000 chunks, sent in order.

Chunks default to 10 MB: a 64 MB request over a rural mobile link in TTS would outlast
any sensible timeout, and a smaller chunk only costs more requests.  Pure values and a
file check, no HTTP: the adapter (:mod:`channels.tiktok`) does the requests.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from channels.base import PermanentChannelError, TransientChannelError

MB = 1024 * 1024
MIN_CHUNK = 5 * MB
MAX_CHUNK = 64 * MB
MAX_CHUNKS = 1000
DEFAULT_CHUNK = 10 * MB
MAX_VIDEO_BYTES = 4 * 1024 * MB  # TikTok's limit for one video
MP4_TYPE = "video/mp4"
# ISO base media brands that are MP4; QuickTime ("qt  ") shares the box layout but is not.
_NOT_MP4_BRANDS = frozenset({b"qt  "})


@dataclass(frozen=True, slots=True)
class ChunkPlan:
    """The three numbers of the init and the byte ranges they imply."""

    video_size: int
    chunk_size: int
    total_chunk_count: int

    def ranges(self) -> Iterator[tuple[int, int]]:
        """``(first, last)`` byte of each chunk, inclusive, as ``Content-Range`` says."""
        for index in range(self.total_chunk_count):
            first = index * self.chunk_size
            final = index == self.total_chunk_count - 1
            last = self.video_size - 1 if final else first + self.chunk_size - 1
            yield first, last

    def source_info(self) -> dict[str, Any]:
        return {"source": "FILE_UPLOAD", "video_size": self.video_size,
                "chunk_size": self.chunk_size, "total_chunk_count": self.total_chunk_count}


def plan_chunks(video_size: int, preferred: int = DEFAULT_CHUNK) -> ChunkPlan:
    """The chunk plan TikTok accepts for ``video_size`` bytes (see module doc)."""
    if video_size <= 0:
        raise PermanentChannelError("video TikTok kosong (0 byte)")
    if video_size > MAX_VIDEO_BYTES:
        raise PermanentChannelError(
            f"video {video_size} byte melebihi batas TikTok 4 GB",
            raw={"video_size": video_size})
    if video_size < MIN_CHUNK:
        return ChunkPlan(video_size, video_size, 1)
    chunk = min(max(preferred, MIN_CHUNK), MAX_CHUNK)
    chunk = max(chunk, -(-video_size // MAX_CHUNKS))  # at most 1000 chunks
    count = video_size // chunk
    if count <= 1 and video_size <= MAX_CHUNK:
        return ChunkPlan(video_size, video_size, 1)
    if count <= 1:  # over 64 MB must be split: two halves, the second takes the odd byte
        chunk, count = video_size // 2, 2
    return ChunkPlan(video_size, chunk, count)


def is_mp4(head: bytes) -> bool:
    """An MP4 starts with an ``ftyp`` box whose major brand is not QuickTime's."""
    return len(head) >= 12 and head[4:8] == b"ftyp" and head[8:12] not in _NOT_MP4_BRANDS


def local_video(path: str) -> tuple[Path, int]:
    """The video file to upload and its size, refused before any call if unusable."""
    file = Path(path)
    try:
        with file.open("rb") as handle:
            head = handle.read(12)
        size = file.stat().st_size
    except OSError as exc:
        raise PermanentChannelError(
            f"berkas video TikTok tidak dapat dibaca: {file.name} ({exc.strerror})",
            raw={"video": file.name}) from None
    if not is_mp4(head):
        raise PermanentChannelError(
            f"berkas video TikTok harus MP4: {file.name}", raw={"video": file.name})
    return file, size


def read_chunks(file: Path, plan: ChunkPlan) -> Iterator[tuple[int, int, bytes]]:
    """``(first, last, bytes)`` of each chunk in order, one chunk in memory at a time."""
    with file.open("rb") as handle:
        for first, last in plan.ranges():
            handle.seek(first)
            yield first, last, handle.read(last - first + 1)


def upload_chunks(client: httpx.Client, upload_url: str, file: Path, plan: ChunkPlan,
                  timeout: float) -> None:
    """``PUT`` each chunk in order with its ``Content-Range``; TikTok answers 206 until
    the last one (201).  A refused chunk fails the post (the same bytes would be refused
    again); a dropped connection or a 5xx is retried, and the retry starts a new init
    because a publish whose file never arrived cannot be published."""
    if not upload_url:
        raise PermanentChannelError("TikTok tidak mengembalikan upload_url untuk video")
    for first, last, data in read_chunks(file, plan):
        headers = {"Content-Type": MP4_TYPE,
                   "Content-Range": f"bytes {first}-{last}/{plan.video_size}"}
        raw: dict[str, Any] = {"endpoint": "upload_url",
                               "content_range": headers["Content-Range"]}
        try:
            response = client.put(upload_url, content=data, headers=headers, timeout=timeout)
        except httpx.HTTPError as exc:
            raise TransientChannelError(f"unggahan video ke TikTok terputus: {exc!r}",
                                        raw=raw) from exc
        status = response.status_code
        if response.is_success:
            continue
        raw |= {"http_status": status, "body": response.text[:300]}
        if status >= 500 or status == 429:
            raise TransientChannelError(f"TikTok belum menerima potongan video (HTTP {status})",
                                        raw=raw)
        raise PermanentChannelError(
            f"TikTok menolak potongan video byte {first}-{last} (HTTP {status})", raw=raw)
