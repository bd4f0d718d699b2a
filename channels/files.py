"""Channels that "send" by writing one file per delivery (``.eml`` mail, the sandbox).

They are the embedded default: the whole pipeline runs, and staff read what would have
gone out.  A file is written whole or not at all and named after the delivery, so a
retry replaces it instead of adding a second one.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from abc import abstractmethod
from pathlib import Path

from channels.base import ChannelAdapter, OutboundMessage, TransientChannelError


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``path`` whole or not at all (temp file + rename in the same directory).

    File-based channels rely on it: a crash never leaves half a message, and a retry of
    the same delivery replaces the file instead of adding a second one.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


DISK_WIDE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS})


class FileChannel(ChannelAdapter[bytes, Path]):
    """Writes each message's bytes to :meth:`file_for` under ``directory``."""

    directory: Path

    def open(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        super().open()

    @abstractmethod
    def file_for(self, message: OutboundMessage) -> Path:
        """Where this delivery's file goes: stable per delivery, so a retry overwrites."""

    def transmit(self, message: OutboundMessage, payload: bytes) -> Path:
        path = self.file_for(message)
        try:
            write_atomically(path, payload)
        except OSError as exc:  # disk full, permissions: may heal, keep the delivery
            # A full or read-only disk refuses every message alike, and the atomic write
            # left nothing behind: hold the rest back without spending attempts.
            disk_wide = exc.errno in DISK_WIDE_ERRNOS
            raise TransientChannelError(
                f"gagal menulis {path}: {exc}",
                raw={"path": str(path), "errno": exc.errno, "not_attempted": disk_wide},
                affects_account=disk_wide,
            ) from exc
        return path
