"""The channel contract: error tree, registry (built-ins and plugins), the pipeline, and
the two file-based channels of the embedded default (``.eml`` files, social sandbox)."""

from __future__ import annotations

import json
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from channels import (
    AuthChannelError,
    Capabilities,
    ChannelAdapter,
    ChannelError,
    ChannelKind,
    ConfigurationError,
    MetricType,
    OutboundMessage,
    PermanentChannelError,
    SendResult,
    SendStatus,
    TransientChannelError,
    available_channels,
    channel_label,
    channel_names,
    channels_of_kind,
    clear_registry_cache,
    get_adapter_class,
    kind_of,
    plugin_channels,
)
from channels.email_file import FileEmailChannel
from channels.sandbox import SandboxChannel

# --------------------------------------------------------------------------- errors


def test_configuration_error_stays_outside_the_channel_error_tree() -> None:
    assert not issubclass(ConfigurationError, ChannelError)
    for kind in (TransientChannelError, PermanentChannelError, AuthChannelError):
        assert issubclass(kind, ChannelError)
    with pytest.raises(ConfigurationError):  # an ``except ChannelError`` does not swallow it
        try:
            get_adapter_class("no-such-channel")
        except ChannelError:  # pragma: no cover - the point is that this never matches
            pytest.fail("ConfigurationError was caught as a ChannelError")


# --------------------------------------------------------------------------- registry


def test_builtin_channels_resolve_lazily() -> None:
    assert get_adapter_class("email_file") is FileEmailChannel
    assert get_adapter_class("sandbox") is SandboxChannel
    names = available_channels()
    builtins = {"email_smtp", "email_file", "sandbox", "facebook", "instagram", "tiktok"}
    assert builtins | {"whatsapp"} <= set(names)


def test_unknown_channel_suggests_the_nearest_name() -> None:
    with pytest.raises(ConfigurationError) as info:
        get_adapter_class("facebok")
    message = str(info.value)
    assert "tidak dikenal" in message
    assert "Maksud Anda 'facebook'?" in message
    assert info.value.code == "channel.unknown_suggest"
    assert info.value.params["suggestion"] == "facebook"
    english = info.value.render("en")
    assert "Unknown channel 'facebok'. Did you mean 'facebook'?" in english


def test_far_off_name_gets_no_suggestion() -> None:
    with pytest.raises(ConfigurationError) as info:
        get_adapter_class("xyzzy")
    assert "Maksud Anda" not in str(info.value)
    assert "email_smtp" in str(info.value)  # the available names are listed instead


@pytest.fixture
def plugin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A directory on sys.path where tests install a tiny third-party distribution."""
    monkeypatch.syspath_prepend(str(tmp_path))
    before = set(sys.modules)
    clear_registry_cache()
    yield tmp_path
    clear_registry_cache()
    for name in set(sys.modules) - before:
        if name.startswith("umkm_plugin_"):
            del sys.modules[name]


def install_plugin(root: Path, dist: str, entry_points: str, modules: dict[str, str]) -> None:
    info = root / f"{dist}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[umkm.channels]\n{entry_points}\n")
    for name, source in modules.items():
        (root / f"{name}.py").write_text(textwrap.dedent(source))


def test_registry_answers_which_channels_of_each_kind() -> None:
    assert channels_of_kind(ChannelKind.EMAIL, plugins=False) == ["email_smtp", "email_file"]
    assert channels_of_kind(ChannelKind.POST, plugins=False) == ["facebook", "instagram", "tiktok"]
    assert channels_of_kind(ChannelKind.MESSAGE, plugins=False) == ["whatsapp"]
    # The sandbox only stands in for other channels: never listed by kind.
    assert "sandbox" not in channels_of_kind(plugins=False)


def test_campaign_channel_names_and_labels_come_from_the_adapters() -> None:
    assert channel_names(plugins=False) == ["email", "facebook", "instagram", "tiktok", "whatsapp"]
    assert channel_names(ChannelKind.POST, ChannelKind.MESSAGE, plugins=False) == [
        "facebook", "instagram", "tiktok", "whatsapp"]
    assert kind_of("email") is ChannelKind.EMAIL and kind_of("whatsapp") is ChannelKind.MESSAGE
    labels = [channel_label(n) for n in channel_names(plugins=False)]
    assert labels == ["Email", "Facebook", "Instagram", "TikTok", "WhatsApp"]
    assert channel_label("uninstalled-plugin") == "uninstalled-plugin"  # display never fails


PIGEON = """
    from channels.base import ChannelAdapter, SendResult, SendStatus

    class PigeonChannel(ChannelAdapter[str, str]):
        name = "pigeon"

        def build_payload(self, message):
            return str(message.payload)

        def transmit(self, message, payload):
            return "pigeon-" + str(message.delivery_id)

        def parse(self, message, response):
            return SendResult(message.delivery_id, SendStatus.SENT, provider_id=response)
"""


def test_entry_point_plugin_is_found_and_works(plugin_dir: Path) -> None:
    install_plugin(
        plugin_dir, "umkm_pigeon", "pigeon = umkm_plugin_pigeon:PigeonChannel",
        {"umkm_plugin_pigeon": PIGEON},
    )
    assert "pigeon" in available_channels()
    assert "pigeon" in plugin_channels()
    # A plugin that declares no kind is a post platform, named by its registry name.
    assert channels_of_kind(ChannelKind.POST)[-1] == "pigeon"
    assert channel_names()[-1] == "pigeon" and channel_label("pigeon") == "pigeon"
    adapter_class = get_adapter_class("pigeon")
    assert adapter_class.__name__ == "PigeonChannel"
    with adapter_class() as adapter:
        result = adapter.send(OutboundMessage(7, "grup-umkm", {"text": "halo"}))
    assert result.provider_id == "pigeon-7"


def test_plugin_missing_its_sdk_gives_the_install_hint(plugin_dir: Path) -> None:
    install_plugin(
        plugin_dir, "umkm_carrier", "carrier = umkm_plugin_carrier:CarrierChannel",
        {"umkm_plugin_carrier": "import umkm_no_such_sdk_xyz\n"},
    )
    with pytest.raises(ConfigurationError) as info:
        get_adapter_class("carrier")
    assert info.value.code == "channel.missing_sdk"
    assert "pip install umkm_no_such_sdk_xyz" in str(info.value)


def test_plugin_pointing_at_a_non_adapter_is_rejected(plugin_dir: Path) -> None:
    install_plugin(
        plugin_dir, "umkm_bogus", "bogus = umkm_plugin_bogus:helper",
        {"umkm_plugin_bogus": "def helper():\n    return 1\n"},
    )
    with pytest.raises(ConfigurationError) as info:
        get_adapter_class("bogus")
    assert info.value.code == "channel.not_adapter"


def test_plugin_cannot_replace_a_builtin(plugin_dir: Path) -> None:
    install_plugin(
        plugin_dir, "umkm_hijack", "sandbox = umkm_plugin_pigeon2:PigeonChannel",
        {"umkm_plugin_pigeon2": PIGEON},
    )
    assert get_adapter_class("sandbox") is SandboxChannel


# --------------------------------------------------------------------------- pipeline


class ScriptedAdapter(ChannelAdapter[str, str]):
    """Fails chosen recipients in chosen ways; records what reached the transport."""

    name = "scripted"

    def __init__(self, failures: dict[str, Exception], rate: float | None = None) -> None:
        super().__init__()
        self.failures = failures
        self.transmitted: list[int] = []
        if rate:
            self.capabilities = Capabilities(rate_per_second=rate)

    def build_payload(self, message: OutboundMessage) -> str:
        if message.recipient == "unbuildable":
            raise KeyError("customer.first_name")
        return f"to {message.recipient}"

    def transmit(self, message: OutboundMessage, payload: str) -> str:
        self.transmitted.append(message.delivery_id)
        failure = self.failures.get(message.recipient)
        if failure is not None:
            raise failure
        return f"id-{message.delivery_id}"

    def parse(self, message: OutboundMessage, response: str) -> SendResult:
        return SendResult(message.delivery_id, SendStatus.SENT, provider_id=response)


def batch(recipients: list[str], account: str = "dinas", start: int = 1) -> list[OutboundMessage]:
    return [
        OutboundMessage(start + i, rcpt, {"text": "x"}, account=account)
        for i, rcpt in enumerate(recipients)
    ]


def test_one_permanent_failure_in_ten_fails_alone() -> None:
    recipients = [f"r{i}" for i in range(10)]
    adapter = ScriptedAdapter(
        {"r3": PermanentChannelError("nomor tidak terdaftar", raw={"code": 100})}
    )
    results = adapter.send_batch(batch(recipients))

    assert [r.delivery_id for r in results] == list(range(1, 11))
    assert [r.status for r in results].count(SendStatus.SENT) == 9
    failed = results[3]
    assert failed.status == SendStatus.PERMANENT
    assert failed.error == "nomor tidak terdaftar"
    assert failed.raw == {"code": 100}
    assert results[4].provider_id == "id-5"
    assert adapter.transmitted == list(range(1, 11))


def test_transient_keeps_retry_after_and_does_not_stop_the_batch() -> None:
    adapter = ScriptedAdapter({"r0": TransientChannelError("throttled", retry_after=30)})
    results = adapter.send_batch(batch(["r0", "r1"]))
    assert results[0].status == SendStatus.TRANSIENT
    assert results[0].retry_after == 30
    assert results[1].ok


def test_auth_failure_pauses_only_that_account() -> None:
    adapter = ScriptedAdapter({"a1": AuthChannelError("token kedaluwarsa")})
    messages = batch(["a0", "a1", "a2"], account="page-A") + batch(["b0"], "page-B", start=4)
    messages.insert(3, batch(["a3"], account="page-A", start=9)[0])
    results = adapter.send_batch(messages)

    by_id = {r.delivery_id: r for r in results}
    assert by_id[1].ok
    assert by_id[2].status == SendStatus.AUTH and by_id[2].affects_account
    assert by_id[3].status == SendStatus.AUTH and by_id[3].raw["not_attempted"]
    assert by_id[9].status == SendStatus.AUTH
    assert by_id[4].ok  # the other account keeps sending
    assert adapter.transmitted == [1, 2, 4]


def test_account_wide_transient_skips_the_rest_of_that_account() -> None:
    down = TransientChannelError("server down", affects_account=True, retry_after=60)
    adapter = ScriptedAdapter({"r0": down})
    results = adapter.send_batch(batch(["r0", "r1", "r2"]))
    assert [r.status for r in results] == [SendStatus.TRANSIENT] * 3
    assert [r.retry_after for r in results] == [60, 60, 60]
    assert adapter.transmitted == [1]


def test_unbuildable_message_fails_alone_without_reaching_the_transport() -> None:
    adapter = ScriptedAdapter({})
    results = adapter.send_batch(batch(["r0", "unbuildable", "r2"]))
    assert [r.status for r in results] == [SendStatus.SENT, SendStatus.PERMANENT, SendStatus.SENT]
    assert "customer.first_name" in (results[1].error or "")
    assert adapter.transmitted == [1, 3]


def test_unexpected_error_keeps_earlier_results_and_stops_the_account() -> None:
    adapter = ScriptedAdapter({"r1": RuntimeError("bug in the SDK")})
    results = adapter.send_batch(batch(["r0", "r1", "r2"]))
    assert results[0].ok
    assert results[1].status == SendStatus.TRANSIENT
    assert results[1].raw["outcome_unknown"] is True
    assert results[2].raw["not_attempted"] is True
    assert adapter.transmitted == [1, 2]
    with pytest.raises(RuntimeError):  # a single send shows the bug as it is
        adapter.send(batch(["r1"])[0])


def test_rate_limit_is_honoured() -> None:
    adapter = ScriptedAdapter({}, rate=50)
    started = time.monotonic()
    adapter.send_batch(batch([f"r{i}" for i in range(6)]))
    assert time.monotonic() - started >= 5 / 50 * 0.95


def test_capabilities_reject_unsupported_content_loudly() -> None:
    caps = Capabilities(media_types=frozenset({"text", "image"}), max_text_length=10)
    caps.check("facebook", media_type="image", text="pendek")
    with pytest.raises(ConfigurationError, match="video"):
        caps.check("facebook", media_type="video")
    with pytest.raises(ConfigurationError, match="10 karakter"):
        caps.check("facebook", text="x" * 11)


def test_provider_metric_names_map_to_one_vocabulary() -> None:
    assert MetricType.from_provider("likes") is MetricType.REACTION
    assert MetricType.from_provider("saved") is MetricType.SAVE
    assert MetricType.from_provider("Reach") is MetricType.REACH
    assert MetricType.from_provider("impressions") is None  # retired by Meta: not tracked


# --------------------------------------------------------------------------- file channels


def eml(message_id: str, body: str) -> bytes:
    return (
        f"From: a@example.com\r\nTo: b@example.com\r\nMessage-ID: {message_id}\r\n"
        f"Subject: x\r\n\r\n{body}\r\n"
    ).encode()


def test_email_file_retry_overwrites_instead_of_duplicating(tmp_path: Path) -> None:
    outbox = tmp_path / "outbox"
    first = OutboundMessage(1, "b@example.com", eml("<d1@umkm>", "v1"), message_id="<d1@umkm>")
    retry = OutboundMessage(1, "b@example.com", eml("<d1@umkm>", "v2"), message_id="<d1@umkm>")
    other = OutboundMessage(2, "c@example.com", eml("<d2@umkm>", "v1"), message_id="<d2@umkm>")
    adapter_class: Any = get_adapter_class("email_file")
    with adapter_class(root=outbox) as channel:
        results = channel.send_batch([first, retry, other])

    files = sorted(p.name for p in (outbox / "email").iterdir())
    assert files == ["d1@umkm.eml", "d2@umkm.eml"]
    assert (outbox / "email" / "d1@umkm.eml").read_bytes().endswith(b"v2\r\n")
    assert [r.provider_id for r in results] == ["d1@umkm.eml", "d1@umkm.eml", "d2@umkm.eml"]


def test_email_file_names_cannot_escape_the_outbox(tmp_path: Path) -> None:
    hostile = OutboundMessage(3, "b@example.com", b"x", message_id="<../../etc/passwd@evil>")
    with FileEmailChannel(tmp_path) as channel:
        result = channel.send(hostile)
    written = Path(result.raw["path"])
    assert written.parent == tmp_path / "email"
    assert written.read_bytes() == b"x"


def test_sandbox_writes_payload_as_json_and_returns_a_fake_id(tmp_path: Path) -> None:
    adapter_class: Any = get_adapter_class("sandbox")
    post = {"text": "Tenun ikat Mollo, diskon 15%", "image_url": "https://x/y.jpg"}
    with adapter_class(tmp_path / "outbox", channel="facebook") as channel:
        not_a_dict: Any = "x"
        good = OutboundMessage(41, "page:dinas", post, account="dinas")
        results = channel.send_batch([good, OutboundMessage(42, "p", not_a_dict)])
    assert results[0].provider_id == "sandbox-facebook-41"
    assert results[1].status == SendStatus.PERMANENT  # a social payload must be a dict
    document = json.loads((tmp_path / "outbox" / "facebook" / "41.json").read_text())
    assert document["payload"] == post
    assert document["account"] == "dinas"
    assert document["written_at"].startswith("20")


def test_sandbox_metrics_are_stable_and_only_for_its_posts(tmp_path: Path) -> None:
    channel = SandboxChannel(tmp_path, channel="instagram")
    channel.send(OutboundMessage(5, "ig", {"caption": "kopi"}))
    first = channel.fetch_metrics(["sandbox-instagram-5", "sandbox-instagram-999", "other"])
    again = channel.fetch_metrics(["sandbox-instagram-5"])
    assert {m.type for m in first} == set(MetricType)
    assert {m.provider_post_id for m in first} == {"sandbox-instagram-5"}
    assert [(m.type, m.count) for m in first] == [(m.type, m.count) for m in again]


def test_sandbox_channel_name_is_validated(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError):
        SandboxChannel(tmp_path, channel="../etc")
