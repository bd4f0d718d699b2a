"""Real services for the test suite: Redis (shared and private) and Celery processes.

Register once in ``tests/conftest.py``::

    pytest_plugins = ["tests.services"]

Fixtures:

- ``redis_url`` (session): the machine's Redis (``TEST_REDIS_URL``, default
  ``redis://127.0.0.1:6379/0``) on a database number (1-15) claimed for this session
  only, so parallel test sessions never flush each other; flushed at start and end.
  ``clean_redis`` (function) flushes it again before a test and yields the same URL.
- ``private_redis`` (function): its own ``redis-server`` on a free port, for tests that
  stop, kill or restart Redis (``.stop()``, ``.kill()``, ``.start(persist=True)``).
- ``celery_workers`` (function, factory): ``celery_workers.start(n, env)`` runs REAL
  ``celery worker`` processes and waits until each logged "ready"; see
  :class:`WorkerGroup`. Indices are 0-based; worker ``i`` is named ``w{i+1}@<host>``.
- ``beat_process`` (function, factory): ``beat_process.start(env)`` runs ``celery beat``.

Every process started here is killed at teardown, whatever the test did. A missing
service (no Redis, no ``redis-server`` binary) skips locally and FAILS with ``CI=true``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis

from tests.conftest import REDIS_URL, service_missing

ROOT = Path(__file__).resolve().parent.parent
LOCK_KEY = "umkm:test-session-lock"
LOCK_TTL = 6 * 3600  # seconds; a crashed session frees its database after this at most
READY_TIMEOUT = 90.0  # seconds a starting process may go without using CPU (wait_while_busy)
STOP_TIMEOUT = 30.0
DEFAULT_QUEUES = ("transactional", "bulk", "beat")

# Take over a lock only if it still holds the stale owner we saw (compare-and-set).
_TAKE_OVER = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3]); return 1
end
return 0
"""


# --------------------------------------------------------------------------- helpers


def free_port() -> int:
    """A TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def with_db(url: str, db: int) -> str:
    """``url`` pointing at Redis database ``db`` (redis-py lets the URL path win)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{db}"))


def tail(path: Path, lines: int = 40) -> str:
    """The end of a log file, for failure messages."""
    if not path.exists():
        return "(no log)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def wait_until(check: Callable[[], bool], timeout: float, step: float = 0.05) -> bool:
    """Poll ``check`` until it is true or ``timeout`` seconds passed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(step)
    return check()


def cpu_seconds(pid: int) -> float:
    """CPU time a process and its reaped children have used, from ``/proc/<pid>/stat``."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()  # after the command name, which may hold spaces
    return sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")  # utime..cstime


def wait_while_busy(check: Callable[[], bool], pid: int, stall: float,
                    step: float = 0.1, busy: float = 0.5) -> bool:
    """Poll ``check`` for as long as process ``pid`` keeps working toward it.

    Starting or stopping a Celery process is CPU work (imports, forks, closing pools); on a
    machine whose cores are busy with other work it takes longer, not forever. The deadline
    follows that progress: ``check`` fails only after ``stall`` seconds in which the process
    used less than ``busy`` seconds of CPU (an idle or hung process does not reset it).
    """
    deadline, mark = time.monotonic() + stall, cpu_seconds(pid)
    while not check():
        used = cpu_seconds(pid)
        if used - mark >= busy:
            deadline, mark = time.monotonic() + stall, used
        if time.monotonic() > deadline:
            return check()
        time.sleep(step)
    return True


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def child_env(env: Mapping[str, str]) -> dict[str, str]:
    """``os.environ`` overlaid with ``env``; the repo importable, output unbuffered."""
    merged = {**os.environ, **{k: str(v) for k, v in env.items()}}
    path = merged.get("PYTHONPATH", "")
    merged["PYTHONPATH"] = f"{ROOT}{os.pathsep}{path}" if path else str(ROOT)
    merged["PYTHONUNBUFFERED"] = "1"
    return merged


# ------------------------------------------------------------------ the shared Redis


def _claim_database(base_url: str, owner: str) -> int | None:
    """Claim a database number 15..1 with a lock key; steal locks of dead local pids."""
    host = socket.gethostname()
    for db in range(15, 0, -1):
        client = redis.Redis.from_url(with_db(base_url, db), decode_responses=True)
        try:
            if client.set(LOCK_KEY, owner, nx=True, ex=LOCK_TTL):
                return db
            holder = str(client.get(LOCK_KEY) or "")
            holder_host, _, holder_pid = holder.rpartition(":")
            stale = holder_host == host and holder_pid.isdigit() and not _pid_alive(
                int(holder_pid))
            if stale and client.eval(_TAKE_OVER, 1, LOCK_KEY, holder, owner, str(LOCK_TTL)):
                return db
        finally:
            client.close()
    return None


def _flush_keeping_lock(client: redis.Redis, owner: str) -> None:
    """Empty the session database in one transaction, so the claim never lapses."""
    pipe = client.pipeline(transaction=True)
    pipe.flushdb()
    pipe.set(LOCK_KEY, owner, ex=LOCK_TTL)
    pipe.execute()


@pytest.fixture(scope="session")
def _redis_session() -> Iterator[tuple[str, str]]:
    base = os.environ.get("TEST_REDIS_URL", REDIS_URL)
    probe = redis.Redis.from_url(base, socket_connect_timeout=2)
    try:
        probe.ping()
    except redis.RedisError as exc:
        service_missing("Redis", exc)
    finally:
        probe.close()
    owner = f"{socket.gethostname()}:{os.getpid()}"
    db = _claim_database(base, owner)
    if db is None:
        service_missing("Redis", "every test database 1-15 is claimed by another session")
        raise AssertionError("unreachable")  # service_missing always raises
    url = with_db(base, db)
    client = redis.Redis.from_url(url, decode_responses=True)
    _flush_keeping_lock(client, owner)
    yield url, owner
    if client.get(LOCK_KEY) == owner:
        client.flushdb()
    client.close()


@pytest.fixture(scope="session")
def redis_url(_redis_session: tuple[str, str]) -> str:
    """URL of the machine's Redis on a database private to this test session."""
    return _redis_session[0]


@pytest.fixture
def clean_redis(_redis_session: tuple[str, str]) -> str:
    """Like ``redis_url``, emptied before this test (no messages left by earlier tests)."""
    url, owner = _redis_session
    client = redis.Redis.from_url(url, decode_responses=True)
    _flush_keeping_lock(client, owner)
    client.close()
    return url


# ----------------------------------------------------------------- a private Redis


class RedisServer:
    """One ``redis-server`` process on a fixed loopback port, restartable on that port.

    No persistence by default (``--save "" --appendonly no``); ``start(persist=True)``
    turns on the AOF (as the production compose file does) and the choice sticks for
    later restarts.
    """

    def __init__(self, binary: str, workdir: Path, port: int) -> None:
        self.binary = binary
        self.workdir = workdir
        self.port = port
        self.persist = False
        self.log_path = workdir / "redis.log"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self.running and self._proc else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def client(self, **kwargs: Any) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_connect_timeout=1, **kwargs)

    def _ping(self) -> bool:
        client = self.client()
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()

    def start(self, persist: bool | None = None, timeout: float = 15.0) -> None:
        """Start (again) on the same port and wait until it answers PING."""
        if self.running:
            raise RuntimeError(f"redis-server on port {self.port} is already running")
        if persist is not None:
            self.persist = persist
        args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "yes" if self.persist else "no",
                "--dir", str(self.workdir), "--logfile", str(self.log_path),
                "--daemonize", "no"]
        self._proc = subprocess.Popen(args, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL, start_new_session=True)
        ready = wait_until(lambda: self._ping() or not self.running, timeout)
        if not (ready and self.running):
            self.kill()
            raise RuntimeError(f"redis-server did not start on port {self.port}:\n"
                               f"{tail(self.log_path)}")

    def stop(self, timeout: float = 15.0) -> None:
        """Graceful shutdown (SIGTERM: the AOF is flushed when persistence is on)."""
        if not self.running or self._proc is None:
            return
        self._proc.terminate()
        try:
            self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        """Crash it (SIGKILL): what a power cut or an OOM kill does."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()

    def restart(self, persist: bool | None = None) -> None:
        self.stop()
        self.start(persist)


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test alone, already started; always killed afterwards."""
    binary = shutil.which("redis-server")
    if binary is None:
        service_missing("redis-server binary", "not found on PATH")
        raise AssertionError("unreachable")
    workdir = tmp_path / "private-redis"
    workdir.mkdir()
    server: RedisServer | None = None
    for _attempt in range(3):  # the free port can be taken between probe and bind
        server = RedisServer(binary, workdir, free_port())
        try:
            server.start()
            break
        except RuntimeError:
            server = None
    if server is None:
        pytest.fail(f"could not start redis-server:\n{tail(workdir / 'redis.log')}")
    try:
        yield server
    finally:
        server.kill()


# ------------------------------------------------------------------ Celery processes


class _Proc:
    """One Celery process (worker or beat): its own session, log file and ready marker."""

    def __init__(self, args: list[str], env: dict[str, str], cwd: Path, log_path: Path,
                 ready_marker: str) -> None:
        self.args = args
        self.env = env
        self.cwd = cwd
        self.log_path = log_path
        self.ready_marker = ready_marker
        self.popen: subprocess.Popen[bytes] | None = None
        self.pgids: list[int] = []  # every process group ever started, for teardown
        self._log_offset = 0

    def launch(self) -> None:
        if self.alive:
            raise RuntimeError(f"{self.args[4:6]} is already running")
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            # Own session: the whole tree (prefork children) can be signalled at once.
            self.popen = subprocess.Popen(self.args, env=self.env, cwd=self.cwd,
                                          stdout=log, stderr=subprocess.STDOUT,
                                          start_new_session=True)
        self.pgids.append(self.popen.pid)

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.alive and self.popen else None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def _ready(self) -> bool:
        with self.log_path.open("rb") as fh:
            fh.seek(self._log_offset)
            return self.ready_marker.encode() in fh.read()

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        """Wait for the ready line; ``timeout`` is how long the process may stall, not run."""
        assert self.popen is not None
        ok = wait_while_busy(lambda: self._ready() or not self.alive, self.popen.pid, timeout)
        if not (ok and self.alive):
            code = self.popen.poll() if self.popen else None
            self.kill(signal.SIGKILL)
            raise RuntimeError(f"celery process not ready (exit code {code}) after "
                               f"{timeout:.0f} s: {' '.join(self.args)}\n"
                               f"{tail(self.log_path)}")

    def kill(self, sig: int = signal.SIGKILL, whole_group: bool = True) -> None:
        """Send ``sig`` to the main process or its whole group; wait if it was SIGKILL."""
        if self.popen is None:
            return
        if whole_group:
            _signal_group(self.popen.pid, sig)
        elif self.popen.poll() is None:
            self.popen.send_signal(sig)
        if sig == signal.SIGKILL:
            self.popen.wait()

    def stop(self, timeout: float = STOP_TIMEOUT) -> int:
        """SIGTERM (Celery's warm shutdown: finish running tasks) and wait; exit code.

        Raises if it did not exit in time (after killing it), so a hanging shutdown
        fails the test instead of being hidden by teardown.
        """
        if self.popen is None:
            raise RuntimeError("process was never started")
        if self.popen.poll() is None:
            self.popen.terminate()
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill(signal.SIGKILL)
            raise RuntimeError(f"no clean shutdown within {timeout:.0f} s:\n"
                               f"{tail(self.log_path)}") from None

    def cleanup(self) -> None:
        """Teardown: graceful if possible, then SIGKILL every group ever started."""
        if self.alive and self.popen is not None:
            self.popen.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(10)
        for pgid in self.pgids:
            _signal_group(pgid, signal.SIGKILL)
        if self.popen is not None:
            self.popen.wait()


class WorkerGroup:
    """Real ``celery worker`` processes started by :class:`CeleryWorkers`.

    Indices are 0-based: ``kill(0)`` kills ``hostnames[0]`` (``w1@<host>``).
    """

    def __init__(self, procs: list[_Proc], hostnames: list[str], env: dict[str, str]) -> None:
        self._procs = procs
        self.hostnames = hostnames
        self._env = env

    def __len__(self) -> int:
        return len(self._procs)

    @property
    def pids(self) -> list[int | None]:
        """Main process id of each worker (None once it exited)."""
        return [p.pid for p in self._procs]

    def alive(self, i: int) -> bool:
        return self._procs[i].alive

    def logs(self, i: int) -> str:
        """Everything worker ``i`` wrote (all its runs, restarts appended)."""
        return self._procs[i].log()

    def log_path(self, i: int) -> Path:
        return self._procs[i].log_path

    def kill(self, i: int, sig: int = signal.SIGKILL, *, whole_group: bool = True) -> None:
        """Signal worker ``i``; by default its pool children too (a container crash).
        ``whole_group=False`` hits only the main process."""
        self._procs[i].kill(sig, whole_group)

    def stop_gracefully(self, i: int, timeout: float = STOP_TIMEOUT) -> int:
        """Warm shutdown (SIGTERM): running tasks finish, then exit; returns exit code."""
        return self._procs[i].stop(timeout)

    def restart(self, i: int, timeout: float = READY_TIMEOUT) -> None:
        """Start worker ``i`` again with the same name and options (stop it first if it
        still runs) and wait until it is ready."""
        proc = self._procs[i]
        if proc.alive:
            proc.stop()
        proc.launch()
        proc.wait_ready(timeout)

    def ping(self, i: int, timeout: float = 5.0) -> bool:
        """Does worker ``i`` answer a remote-control ping through the broker?"""
        from celery import Celery

        broker = self._env.get("REDIS_URL")
        if not broker:
            raise RuntimeError("ping needs REDIS_URL in the workers' env")
        client = Celery("umkm-test-client", broker=broker)
        try:
            replies = client.control.ping(destination=[self.hostnames[i]], timeout=timeout)
        finally:
            client.close()
        return any(self.hostnames[i] in reply for reply in replies)

    def stop_all(self) -> None:
        for proc in self._procs:
            proc.cleanup()


class CeleryWorkers:
    """Factory behind the ``celery_workers`` fixture."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.groups: list[WorkerGroup] = []
        self._count = 0

    def start(self, n: int, env: Mapping[str, str], queues: Sequence[str] = DEFAULT_QUEUES,
              concurrency: int = 1, pool: str = "prefork", *, app: str = "workers.celery_app",
              extra_args: Sequence[str] = (), timeout: float = READY_TIMEOUT) -> WorkerGroup:
        """Start ``n`` workers in parallel and wait until every one is ready.

        ``env`` is laid over ``os.environ`` (DATABASE_URL, REDIS_URL, SECRET_KEY, VAR_DIR,
        SMTP_HOST/PORT... as the test needs). The working directory is a temporary one, so
        no ``.env`` of the repository leaks in.
        """
        merged = child_env(env)
        host = socket.gethostname()
        procs, names = [], []
        for _ in range(n):
            self._count += 1
            name = f"w{self._count}@{host}"
            args = [sys.executable, "-m", "celery", "-A", app, "worker", "-n", name,
                    "-Q", ",".join(queues), "-c", str(concurrency), "-P", pool,
                    "--without-gossip", "--without-mingle", "--without-heartbeat",
                    "-O", "fair", "--loglevel", "INFO", *extra_args]
            log = self.tmp / f"worker-w{self._count}.log"
            procs.append(_Proc(args, merged, self.tmp, log, f"{name} ready."))
            names.append(name)
        group = WorkerGroup(procs, names, merged)
        self.groups.append(group)
        for proc in procs:
            proc.launch()
        for proc in procs:
            proc.wait_ready(timeout)
        return group

    def cleanup(self) -> None:
        for group in self.groups:
            group.stop_all()


@pytest.fixture
def celery_workers(tmp_path: Path) -> Iterator[CeleryWorkers]:
    """Factory of real Celery worker processes; all are killed at teardown."""
    workdir = tmp_path / "celery"
    workdir.mkdir(exist_ok=True)
    factory = CeleryWorkers(workdir)
    try:
        yield factory
    finally:
        factory.cleanup()


class BeatProcess:
    """A real ``celery beat`` process with its schedule file under the test's tmp."""

    def __init__(self, proc: _Proc, schedule_path: Path) -> None:
        self._proc = proc
        self.schedule_path = schedule_path

    @property
    def pid(self) -> int | None:
        return self._proc.pid

    @property
    def alive(self) -> bool:
        return self._proc.alive

    def logs(self) -> str:
        return self._proc.log()

    def stop(self, timeout: float = STOP_TIMEOUT) -> int:
        return self._proc.stop(timeout)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        self._proc.kill(sig)

    def restart(self, timeout: float = READY_TIMEOUT) -> None:
        if self._proc.alive:
            self._proc.stop()
        self._proc.launch()
        self._proc.wait_ready(timeout)


class BeatFactory:
    """Factory behind the ``beat_process`` fixture."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.beats: list[BeatProcess] = []

    def start(self, env: Mapping[str, str], *, app: str = "workers.celery_app",
              max_interval: float | None = None, extra_args: Sequence[str] = (),
              timeout: float = READY_TIMEOUT) -> BeatProcess:
        """Start ``celery beat`` and wait until it logged "beat: Starting..."."""
        k = len(self.beats) + 1
        schedule = self.tmp / f"celerybeat-schedule-{k}"
        args = [sys.executable, "-m", "celery", "-A", app, "beat", "-s", str(schedule),
                "--pidfile", str(self.tmp / f"beat-{k}.pid"), "--loglevel", "INFO"]
        if max_interval is not None:
            args += ["--max-interval", str(max_interval)]
        args += list(extra_args)
        proc = _Proc(args, child_env(env), self.tmp, self.tmp / f"beat-{k}.log",
                     "beat: Starting...")
        beat = BeatProcess(proc, schedule)
        self.beats.append(beat)
        proc.launch()
        proc.wait_ready(timeout)
        return beat

    def cleanup(self) -> None:
        for beat in self.beats:
            beat._proc.cleanup()


@pytest.fixture
def beat_process(tmp_path: Path) -> Iterator[BeatFactory]:
    """Factory of real Celery beat processes; all are killed at teardown."""
    workdir = tmp_path / "celery"
    workdir.mkdir(exist_ok=True)
    factory = BeatFactory(workdir)
    try:
        yield factory
    finally:
        factory.cleanup()
