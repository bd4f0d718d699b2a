"""Sisimai (the bounce analyser of the ``libsisimai-perl`` package) behind a pipe.

Sisimai recognises the free-text layouts of qmail, Exim, Gmail, Exchange and some
sixty other MTAs that our RFC 3464 parser cannot read.  It is Perl, so one long-lived
``perl scripts/sisimai_bridge.pl`` process answers one message per request in JSON
(starting Perl and loading Sisimai costs far more than a parse).  Each answer has a
deadline; a process that times out, crashes or talks nonsense is killed and the next
request starts a fresh one.  Without Perl or Sisimai (the embedded default may lack
them) :func:`available` is false and the caller uses its own fallback parser.
"""

from __future__ import annotations

import json
import logging
import os
import selectors
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "sisimai_bridge.pl"
DEFAULT_TIMEOUT = 20.0
MAX_MESSAGE_BYTES = 4 * 1024 * 1024


class BridgeError(RuntimeError):
    """Sisimai gave no usable answer (timeout, crash, bad JSON): use the fallback."""


class SisimaiBridge:
    """One Perl process, serialised by a lock (the bounce jobs are not hot paths)."""

    def __init__(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.timeout = timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self.version = ""

    def _start(self) -> subprocess.Popen[bytes]:
        perl = shutil.which("perl")
        if perl is None:
            raise BridgeError("perl tidak terpasang")
        proc = subprocess.Popen([perl, str(SCRIPT)], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        try:
            hello = self._read_line(proc)
        except BridgeError:
            self._kill(proc)
            raise
        if not hello.get("ready"):
            self._kill(proc)
            raise BridgeError("Sisimai tidak siap")
        self.version = str(hello.get("version", ""))
        return proc

    def _read_line(self, proc: subprocess.Popen[bytes]) -> dict[str, Any]:
        """One JSON line within the deadline (the selector keeps a hung Perl from
        blocking the beat forever)."""
        assert proc.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(proc.stdout, selectors.EVENT_READ)
            if not selector.select(self.timeout):
                raise BridgeError("Sisimai tidak menjawab tepat waktu")
        line = proc.stdout.readline()
        if not line:
            raise BridgeError("proses Sisimai berhenti")
        try:
            answer = json.loads(line.decode("utf-8", "replace"))
        except ValueError as exc:
            raise BridgeError("jawaban Sisimai bukan JSON") from exc
        if not isinstance(answer, dict):
            raise BridgeError("jawaban Sisimai bukan objek")
        return answer

    @staticmethod
    def _kill(proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                stream.close()

    def close(self) -> None:
        with self._lock:
            if self._proc is not None:
                self._kill(self._proc)
                self._proc = None

    def analyse(self, raw: bytes) -> list[dict[str, Any]]:
        """Sisimai's records (``Sisimai::Data->damn``) for one message; may be empty."""
        data = raw[:MAX_MESSAGE_BYTES]
        with self._lock:
            if self._proc is None or self._proc.poll() is not None:
                self._proc = self._start()
            proc = self._proc
            assert proc.stdin is not None
            try:
                proc.stdin.write(b"%d\n" % len(data) + data)
                proc.stdin.flush()
                answer = self._read_line(proc)
            except (BridgeError, OSError) as exc:
                self._kill(proc)
                self._proc = None
                raise BridgeError(str(exc)) from exc
        if not answer.get("ok"):
            raise BridgeError(str(answer.get("error", "galat Sisimai")))
        results = answer.get("results")
        return [r for r in results if isinstance(r, dict)] if isinstance(results, list) else []


_shared: SisimaiBridge | None = None
_shared_lock = threading.Lock()
_available: bool | None = None


def available() -> bool:
    """Perl and Sisimai are installed (checked once per process; ``UMKM_SISIMAI=0``
    turns the bridge off, e.g. to measure the fallback)."""
    global _available
    if os.environ.get("UMKM_SISIMAI", "1").strip().lower() in ("0", "false", "no", "off"):
        return False
    if _available is None:
        perl = shutil.which("perl")
        _available = perl is not None and SCRIPT.is_file() and subprocess.run(
            [perl, "-MSisimai", "-e", "1"], capture_output=True, check=False,
            timeout=30).returncode == 0
    return _available


def bridge() -> SisimaiBridge:
    """The process-wide bridge (started lazily at the first analysis)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = SisimaiBridge()
        return _shared
