"""A third-party channel written outside the project: "kentongan", a village notice board.

In Timor villages the *kentongan* (slit drum) calls people to the notice board; this
adapter posts campaign announcements to a desa's online board over HTTP. It exists to
prove the plugin contract: it imports only :mod:`channels.base`, is registered through
the entry point group ``umkm.channels`` (``kentongan = umkm_kentongan:KentonganChannel``)
and is then usable in a campaign YAML (``channels.kentongan``) without any engine change.

Engine contract for plugin channels: the class is built as ``cls(credentials, hooks=...)``;
per-account options (here the board's ``endpoint``) come from the account's ``meta``,
which the engine hands over as ``AccountCredentials.extra``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from channels.base import (
    AccountCredentials,
    AuthChannelError,
    Capabilities,
    ChannelAdapter,
    OutboundMessage,
    PermanentChannelError,
    SendResult,
    SendStatus,
    SocialHooks,
    TransientChannelError,
)


class KentonganChannel(ChannelAdapter[dict[str, Any], dict[str, Any]]):
    """Post an announcement (text + picture) to one desa notice board."""

    name = "kentongan"
    capabilities = Capabilities(media_types=frozenset({"text", "image"}),
                                max_text_length=2000, max_batch=50)

    def __init__(self, credentials: AccountCredentials, *, hooks: SocialHooks) -> None:
        super().__init__()
        self.credentials = credentials
        self.hooks = hooks
        self.endpoint = str(credentials.extra.get("endpoint") or "").rstrip("/")
        self._http: httpx.Client | None = None

    def open(self) -> None:
        self._http = httpx.Client(timeout=10.0)
        super().open()

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None
        super().close()

    def build_payload(self, message: OutboundMessage) -> dict[str, Any]:
        data = message.payload
        if not isinstance(data, Mapping) or not data.get("caption"):
            raise PermanentChannelError("pengumuman kosong")
        return {"board": self.credentials.external_id, "text": str(data["caption"]),
                "image": data.get("media_url"), "reference": str(message.delivery_id)}

    def transmit(self, message: OutboundMessage, payload: dict[str, Any]) -> dict[str, Any]:
        assert self._http is not None
        try:
            response = self._http.post(
                f"{self.endpoint}/announcements", json=payload,
                headers={"Authorization": f"Bearer {self.credentials.access_token}"})
        except httpx.HTTPError as exc:
            raise TransientChannelError(f"papan desa tidak terjangkau: {exc!r}") from exc
        if response.status_code == 401:
            raise AuthChannelError("token papan desa ditolak", raw={"status": 401})
        if response.status_code >= 400:
            raise PermanentChannelError(f"papan desa menolak: HTTP {response.status_code}")
        answer: dict[str, Any] = response.json()
        return answer

    def parse(self, message: OutboundMessage, response: dict[str, Any]) -> SendResult:
        return SendResult(message.delivery_id, SendStatus.SENT,
                          provider_id=str(response["id"]), raw={"response": response})
