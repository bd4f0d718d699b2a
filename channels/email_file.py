"""Email written as ``.eml`` files: the embedded default when no SMTP server is configured.

Each message lands in ``<root>/email/<message-id>.eml``, exactly the bytes an SMTP relay
would receive, so staff can open it in any mail client.  The file name comes from the
stable Message-ID of the delivery: a retry overwrites the same file and never produces
a duplicate.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Self

from channels.base import (
    AccountCredentials,
    Capabilities,
    ChannelKind,
    OutboundMessage,
    PermanentChannelError,
    SendResult,
    SendStatus,
    SocialHooks,
)
from channels.files import FileChannel

_UNSAFE = re.compile(r"[^A-Za-z0-9._@+=-]")


def eml_name(message: OutboundMessage) -> str:
    """A file-system-safe, stable file name for the message (without directory)."""
    ident = message.message_id.strip().strip("<>")
    if not ident:
        return f"delivery-{message.delivery_id}.eml"
    safe = _UNSAFE.sub("_", ident).lstrip(".")[:180]
    if safe != ident:  # keep ids that differ only in unsafe characters apart
        safe += "-" + hashlib.sha256(ident.encode()).hexdigest()[:8]
    return f"{safe}.eml"


class FileEmailChannel(FileChannel):
    """Write each email to ``<root>/email/`` instead of sending it (same interface as SMTP)."""

    name = "email_file"
    capabilities = Capabilities(media_types=frozenset({"email"}), max_batch=1000,
                                kind=ChannelKind.EMAIL, label="Email")

    def __init__(self, root: str | os.PathLike[str]) -> None:
        super().__init__()
        self.directory = Path(root) / "email"

    @classmethod
    def from_options(cls, options: Mapping[str, Any], *,
                     credentials: AccountCredentials | None = None,
                     hooks: SocialHooks | None = None) -> Self:
        """Only the outbox directory matters: the files stand in for a relay."""
        return cls(options["root"])

    def build_payload(self, message: OutboundMessage) -> bytes:
        if not isinstance(message.payload, bytes):
            raise PermanentChannelError("payload email harus berupa bytes RFC 5322")
        if not message.recipient:
            raise PermanentChannelError("alamat penerima kosong")
        return message.payload

    def file_for(self, message: OutboundMessage) -> Path:
        return self.directory / eml_name(message)

    def parse(self, message: OutboundMessage, response: Path) -> SendResult:
        return SendResult(
            message.delivery_id, SendStatus.SENT, provider_id=response.name,
            raw={"path": str(response)},
        )
