"""End-to-end benchmark: a personalized, DKIM-signed campaign through real Celery workers.

``make bench`` (100,000 recipients) / ``make bench-quick`` (10,000). What it does:

1. starts Postfix's ``smtp-sink`` (C, counts and discards) on a free loopback port, a
   private ``redis-server`` (so its memory peak is ours alone) and a scratch PostgreSQL
   database (created from the ``test`` database as admin, dropped at the end);
2. migrates, seeds the demo catalog plus N customers with purchase history and consent
   (:mod:`bench.seed`), generates an RSA-2048 DKIM key;
3. measures the raw limit: pre-rendered, signed messages pushed with ``smtplib`` over one
   connection into the same sink;
4. starts two real ``celery worker`` processes (prefork, ``-c 1``), launches a
   promotional campaign (name in the subject, three recommended products, tracked links,
   DKIM), times plan + enqueue, and waits until the outbox says every row is done;
5. repeats a smaller pass with one worker, for the scaling figure;
6. prints a table, writes ``bench/results/latest.json`` and appends a row to
   ``docs/performance.md``.

Targets (printed, never asserted): >= 1,000 msg/s and >= 0.4 of raw; plan + enqueue of
100k < 10 s; RSS < 150 MB per worker and flat; Redis < 50 MB.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shutil
import signal
import smtplib
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "bench" / "results" / "latest.json"
PERF_DOC = ROOT / "docs" / "performance.md"
PG_ADMIN_URL = os.environ.get("BENCH_POSTGRES_URL", os.environ.get(
    "TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"))
SECRET = "bench-only-secret-key-not-for-production-0123456789"
DOMAIN = "umkm.ttskab.go.id"
SELECTOR = "bench2026"
TIMINGS_KEY = "umkm:bench:timings"
QUEUES = "bulk,transactional"
TARGETS = {"messages_per_second": 1000.0, "ratio_to_raw": 0.4, "plan_seconds_100k": 10.0,
           "plan_seconds_max": 60.0, "rss_mb": 150.0, "redis_mb": 50.0, "redis_mb_1m": 100.0}
# The tables a run fills, whose sizes the report gives after it (issue 22).
SIZED_TABLES = ("delivery", "delivery_product", "customer", "order", "order_item", "consent")

CAMPAIGN_YAML = """\
# Benchmark campaign written by bench/e2e.py (promotional, Pasal 7(3)a).
version: 1
id: {id}
name: Benchmark promo tenun ikat
type: promotional
tags: [tenun, akhir-tahun]
timezone: Asia/Makassar
schedule: {{start: 2026-01-01 00:00}}
audience:
  include:
    - {{consent: marketing}}
    - {{purchased_category: kerajinan_tangan, within_days: 365}}
    - {{tag: {tag}}}
  exclude: [{{purchased_within_days: 7}}]
  frequency_cap: {{max: {cap}, per_days: 7}}
products: {{opt_in: required, per_message: 3}}
offer: {{kind: discount, percent: 15, code: TENUN15, ends: 2099-12-31, title: Diskon Akhir Tahun}}
channels:
  email:
    template: email/promotional.mjml
    subject: "{{{{ customer.first_name }}}}, diskon {{{{ offer.percent }}}}% tenun ikat TTS"
    preheader: "Kode {{{{ offer.code }}}} berlaku sampai {{{{ offer.ends | tanggal }}}}"
tracking:
  utm: {{source: dinas-tts, medium: "{{{{ channel }}}}", campaign: "{{{{ campaign.id }}}}"}}
"""


# --------------------------------------------------------------------------- helpers
def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(check: Callable[[], bool], timeout: float, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(step)
    return check()


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def machine() -> dict[str, Any]:
    model = platform.processor() or "?"
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as info:
        for line in info:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_gb = 0.0
    with contextlib.suppress(OSError), open("/proc/meminfo", encoding="utf-8") as info:
        for line in info:
            if line.startswith("MemTotal:"):
                mem_gb = int(line.split()[1]) / 1024 / 1024
    return {"nproc": os.cpu_count() or 0, "cpu": model, "ram_gb": round(mem_gb, 1),
            "python": platform.python_version(), "host": socket.gethostname()}


def proc_status_kb(pid: int, field_name: str) -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1])
    except OSError:
        return 0
    return 0


def children(pid: int) -> list[int]:
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children", encoding="ascii") as fh:
                found += [int(c) for c in fh.read().split()]
    return found


def cpu_seconds(pid: int) -> float:
    """user + system CPU time of one process (from /proc/PID/stat)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot (/proc/stat)."""
    with open("/proc/stat", encoding="ascii") as fh:
        values = [int(v) for v in fh.readline().split()[1:]]
    tick = os.sysconf("SC_CLK_TCK")
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return (sum(values) - idle) / tick, sum(values) / tick


def backend_cpu(database: str) -> dict[int, float]:
    """CPU seconds of each PostgreSQL backend connected to ``database`` (ours only: the
    server is shared with other users of the machine)."""
    from sqlalchemy import create_engine, text

    admin = create_engine(PG_ADMIN_URL)
    try:
        with admin.connect() as conn:
            pids = conn.execute(text("SELECT pid FROM pg_stat_activity WHERE datname = :d"),
                                {"d": database}).scalars().all()
    finally:
        admin.dispose()
    return {int(pid): cpu_seconds(int(pid)) for pid in pids}


# --------------------------------------------------------------------------- services
class SmtpSink:
    """Postfix's smtp-sink: accepts and discards; ``-c`` prints running counters."""

    def __init__(self, workdir: Path) -> None:
        binary = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"
        if not Path(binary).exists():
            raise SystemExit("smtp-sink tidak ada: jalankan scripts/ensure-system-deps.sh --bench")
        self.port = free_port()
        self.log = workdir / "smtp-sink.log"
        args = [binary, "-c"]
        if os.geteuid() == 0:
            args += ["-u", "nobody"]
        args += [f"127.0.0.1:{self.port}", "1000"]
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        if not wait_until(self._answers, 10):
            self.stop()
            raise SystemExit(f"smtp-sink tidak mau jalan: {self.log.read_text()[-500:]}")

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                return sock.recv(64).startswith(b"220")
        except OSError:
            return False

    def messages(self) -> int:
        """The sink's own count of accepted messages (its last ``mesg=`` counter)."""
        found = re.findall(rb"mesg=(\d+)", self.log.read_bytes())
        return int(found[-1]) if found else 0

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class PrivateRedis:
    """A redis-server of this benchmark alone: ``used_memory_peak`` is then ours."""

    def __init__(self, workdir: Path) -> None:
        import redis

        binary = shutil.which("redis-server")
        if binary is None:
            raise SystemExit("redis-server tidak ada: jalankan scripts/ensure-system-deps.sh")
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(workdir), "--daemonize", "no",
             "--logfile", str(workdir / "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        self.client = redis.Redis.from_url(self.url, decode_responses=True)

        def ping() -> bool:
            try:
                return bool(self.client.ping())
            except redis.RedisError:
                return False

        if not wait_until(ping, 10):
            self.stop()
            raise SystemExit("redis-server tidak mau jalan")

    def memory(self, key: str) -> float:
        """One ``INFO memory`` field in MB (e.g. ``used_memory_peak``)."""
        info: dict[str, Any] = self.client.info("memory")  # type: ignore[assignment]
        return int(info[key]) / 1024 / 1024

    def peak_mb(self) -> float:
        return self.memory("used_memory_peak")

    def used_mb(self) -> float:
        return self.memory("used_memory")

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.client.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class ScratchDatabase:
    """A PostgreSQL database of this run, dropped at the end (unless kept)."""

    def __init__(self, keep: bool) -> None:
        from sqlalchemy import create_engine, text

        self.name = f"umkm_bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        self.keep = keep
        self.admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with self.admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{self.name}"'))
        self.url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{self.name}"

    def drop(self) -> None:
        from sqlalchemy import text

        from engine.db import dispose_engines

        dispose_engines()
        if not self.keep:
            with self.admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
        self.admin.dispose()


def _started(proc: subprocess.Popen[bytes], log: Path, marker: str) -> bool:
    """The worker logged its ready line (or died: the caller tells which)."""
    return marker.encode() in log.read_bytes() or proc.poll() is not None


class Workers:
    """Real ``celery worker`` processes (prefork, -c 1) of the bench app."""

    def __init__(self, n: int, env: dict[str, str], workdir: Path, tag: str) -> None:
        merged = {**os.environ, **env, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
        host = socket.gethostname()
        self.procs: list[subprocess.Popen[bytes]] = []
        self.logs: list[Path] = []
        for i in range(n):
            name = f"bench-{tag}-w{i + 1}@{host}"
            log = workdir / f"worker-{tag}-{i + 1}.log"
            args = [sys.executable, "-m", "celery", "-A", "bench.worker_app", "worker",
                    "-n", name, "-Q", QUEUES, "-c", "1", "-P", "prefork",
                    "--without-gossip", "--without-mingle", "--without-heartbeat",
                    "-O", "fair", "--loglevel", "INFO"]
            with log.open("wb") as out:
                self.procs.append(subprocess.Popen(args, env=merged, cwd=workdir, stdout=out,
                                                   stderr=subprocess.STDOUT,
                                                   start_new_session=True))
            self.logs.append(log)
        self.names = [f"bench-{tag}-w{i + 1}@{host}" for i in range(n)]
        for proc, log, name in zip(self.procs, self.logs, self.names, strict=True):
            ready = wait_until(partial(_started, proc, log, f"{name} ready."), 120, 0.1)
            if not ready or proc.poll() is not None:
                self.stop()
                raise SystemExit(f"worker {name} tidak siap:\n{log.read_text()[-2000:]}")
        self.hwm_kb: dict[int, int] = {}

    def pids(self) -> list[tuple[int, list[int]]]:
        """(main pid, pool child pids) of each worker."""
        return [(p.pid, children(p.pid)) for p in self.procs]

    def sample(self) -> None:
        """Remember the peak RSS (VmHWM) of every worker process seen so far."""
        for main, kids in self.pids():
            for pid in (main, *kids):
                self.hwm_kb[pid] = max(self.hwm_kb.get(pid, 0), proc_status_kb(pid, "VmHWM"))

    def peaks_mb(self) -> list[dict[str, float]]:
        """Per worker: peak RSS of the main process and of its pool process."""
        out = []
        for main, kids in self.pids():
            child = max((self.hwm_kb.get(k, 0) for k in kids), default=0)
            out.append({"main_mb": round(self.hwm_kb.get(main, 0) / 1024, 1),
                        "pool_mb": round(child / 1024, 1)})
        return out

    def cpu(self) -> tuple[float, float]:
        """CPU seconds so far of (main processes, pool processes)."""
        pids = self.pids()
        return (sum(cpu_seconds(main) for main, _ in pids),
                sum(cpu_seconds(kid) for _, kids in pids for kid in kids))

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # any orphaned pool child


# --------------------------------------------------------------------------- the campaign
def write_campaign(workdir: Path, campaign_id: str, tag: str, cap: int = 3) -> Path:
    """The bench campaign under ``campaign_id``; ``cap`` is its frequency cap per week
    (``--repeat N`` lifts it to N so each of N campaigns reaches everyone: the rule
    itself is the engine's, only this benchmark's campaign allows more)."""
    path = workdir / f"{campaign_id}.yaml"
    path.write_text(CAMPAIGN_YAML.format(id=campaign_id, tag=tag, cap=cap), encoding="utf-8")
    return path


def make_dkim_key(workdir: Path) -> Path:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = workdir / "dkim.pem"
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    return path


def bench_env(database_url: str, redis_url: str, smtp_port: int, workdir: Path,
              batch_size: int) -> dict[str, str]:
    """The settings of every benchmark process: scratch services, DKIM with a fresh key."""
    return {"DATABASE_URL": database_url, "REDIS_URL": redis_url, "SECRET_KEY": SECRET,
            "VAR_DIR": str(workdir / "var"), "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(smtp_port), "DKIM_DOMAIN": DOMAIN, "DKIM_SELECTOR": SELECTOR,
            "DKIM_KEY_PATH": str(make_dkim_key(workdir)), "BASE_URL": f"https://{DOMAIN}",
            "MAIL_FROM": f"Dinas Koperasi UMKM TTS <pemasaran@{DOMAIN}>",
            "BATCH_SIZE": str(batch_size), "UMKM_LANG": "id", "SMTP_RATE": "0",
            # Throughput of the machine, not of a new domain's first day (engine.outbox.warmup).
            "WARMUP_SCHEDULE": "off"}


def start_services(workdir: Path, keep_db: bool, batch_size: int,
                   cleanups: list[Callable[[], None]]) -> tuple[SmtpSink, PrivateRedis,
                                                               ScratchDatabase, dict[str, str]]:
    """smtp-sink, a private Redis and a scratch database, and this process set up to use
    them (environment, settings, working directory); their stops go to ``cleanups``."""
    sink = SmtpSink(workdir)
    cleanups.append(sink.stop)
    redis_srv = PrivateRedis(workdir)
    cleanups.append(redis_srv.stop)
    db = ScratchDatabase(keep_db)
    cleanups.append(db.drop)
    env = bench_env(db.url, redis_srv.url, sink.port, workdir, batch_size)
    os.environ.update(env)
    os.chdir(workdir)  # no .env of the repository is read
    from engine.config import reset_settings
    from engine.db import dispose_engines

    reset_settings()
    dispose_engines()
    return sink, redis_srv, db, env


# --------------------------------------------------------------------------- raw limit
def sample_messages(count: int) -> list[tuple[str, bytes]]:
    """Messages as the engine would send them (same template, MIME and DKIM), pre-rendered."""
    from engine.config import get_settings
    from engine.delivery.context import _load_signer
    from engine.engagement.tracking import InMemoryLinkRegistry, RunTracker, message_id_for
    from engine.message.mime import MessageSkeleton
    from engine.message.render import compile_email, render_email
    from engine.message.templating import sample_context

    settings = get_settings()
    signer = _load_signer(settings)
    compiled = compile_email("email/promotional.mjml",
                             "{{ customer.first_name }}, diskon 15% tenun ikat TTS")
    base = sample_context("promotional")
    run = RunTracker(InMemoryLinkRegistry(), settings.base_url, {"source": "dinas-tts"})
    skeleton = MessageSkeleton(f"pemasaran@{DOMAIN}", "Dinas Koperasi UMKM TTS", DOMAIN)
    out = []
    for i in range(count):
        tracker = run.for_delivery(i + 1)
        ctx = {**base, "unsubscribe_url": tracker.unsubscribe_url(),
               "customer": {**base["customer"], "first_name": f"Pelanggan{i}"}}
        rendered = render_email(compiled, ctx, tracker)
        rcpt = f"raw{i}@bench.example.id"
        raw = skeleton.build(rcpt, f"Pelanggan{i}", rendered.subject, rendered.text,
                             rendered.html, message_id_for(i + 1, 0, DOMAIN),
                             tracker.unsubscribe_url())
        out.append((rcpt, signer.sign(raw) if signer else raw))
    return out


def measure_raw(port: int, messages: list[tuple[str, bytes]], total: int,
                max_seconds: float) -> dict[str, Any]:
    """smtplib.sendmail over ONE connection, pre-rendered bodies: the transport ceiling."""
    conn = smtplib.SMTP("127.0.0.1", port)
    conn.ehlo()
    sent = 0
    start = time.perf_counter()
    deadline = start + max_seconds
    while sent < total and time.perf_counter() < deadline:
        rcpt, body = messages[sent % len(messages)]
        conn.sendmail(f"pemasaran@{DOMAIN}", [rcpt], body)
        sent += 1
    elapsed = time.perf_counter() - start
    conn.quit()
    return {"messages": sent, "seconds": round(elapsed, 3),
            "messages_per_second": round(sent / elapsed, 1),
            "bytes_per_message": len(messages[0][1])}


# --------------------------------------------------------------------------- one pass
@dataclass
class PassResult:
    workers: int
    planned: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    plan_seconds: float = 0.0
    launch_seconds: float = 0.0
    batches_seconds: float = 0.0
    enqueue_seconds: float = 0.0
    batches: int = 0
    send_seconds: float = 0.0
    total_seconds: float = 0.0
    messages_per_second: float = 0.0
    batch_ms: dict[str, float] = field(default_factory=dict)
    rss: list[dict[str, float]] = field(default_factory=list)
    rss_first_last_mb: list[list[float]] = field(default_factory=list)
    queue_bytes_after_enqueue: int = 0
    sink_messages: int = 0
    worker_cpu_seconds: float = 0.0
    cpu_seconds: dict[str, float] = field(default_factory=dict)
    load_avg: list[float] = field(default_factory=list)
    finished: bool = False


def cpu_snapshot(workers: Workers, sink: SmtpSink, redis_srv: PrivateRedis,
                 database: str) -> dict[str, Any]:
    """CPU seconds so far of each party: where the machine's two cores went."""
    busy, total = machine_cpu()
    main, pool = workers.cpu()
    return {"workers": main + pool, "worker_main": main, "worker_pool": pool,
            "postgres": backend_cpu(database),
            "smtp_sink": cpu_seconds(sink.proc.pid), "redis": cpu_seconds(redis_srv.proc.pid),
            "bench": cpu_seconds(os.getpid()), "machine_busy": busy, "machine_total": total}


def start_profilers(workers: Workers, out_dir: Path, tag: str) -> list[subprocess.Popen[bytes]]:
    """py-spy (collapsed stacks) on every pool process; stopped with SIGINT to write out."""
    binary = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    out_dir.mkdir(parents=True, exist_ok=True)
    procs = []
    for index, (_main, kids) in enumerate(workers.pids()):
        for kid in kids:
            out = out_dir / f"{tag}-w{index + 1}-{kid}.txt"
            procs.append(subprocess.Popen(
                [binary, "record", "--pid", str(kid), "--rate", "200", "--nonblocking",
                 "--format", "raw", "--output", str(out)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    time.sleep(1.0)  # attached before the first batch arrives
    return procs


def stop_profilers(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
    for proc in procs:
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


@dataclass(frozen=True)
class Plan:
    """A launched run handed to the broker, and how long each phase took."""

    run_id: int
    planned: int
    batches: int
    launch_seconds: float
    batches_seconds: float
    enqueue_seconds: float
    enqueue_wall: float  # time.time() when the first batch went to the broker


def plan_run(campaign: Path, mark_after: bool = False) -> Plan:
    """Launch ``campaign`` now and hand its batches to the broker, phase by phase:
    launch (audience + outbox rows), batches (ids marked as handed over), enqueue.

    ``mark_after`` (``--mark-after``, the path before issue 22's plan round): the launch
    inserts unmarked rows and one ``UPDATE ... RETURNING`` marks them afterwards."""
    from engine.campaign.loader import load_campaign
    from engine.db import session_scope
    from engine.delivery import scheduler
    from engine.delivery.enqueue import due_batches_for_run, launch_batches
    from workers.tasks import enqueue_batches

    spec = load_campaign(campaign)
    t0 = time.perf_counter()
    with session_scope() as session:
        launched = scheduler.launch(session, spec, str(campaign), start_now=True,
                                    hand_over=not mark_after)
        assert launched.run is not None
        run_id, planned = launched.run.id, launched.planned
    t1 = time.perf_counter()
    batches = due_batches_for_run(run_id) if mark_after else launch_batches(launched)
    t2 = time.perf_counter()
    enqueue_wall = time.time()
    enqueue_batches(batches)
    t3 = time.perf_counter()
    return Plan(run_id, planned, len(batches), t1 - t0, t2 - t1, t3 - t2, enqueue_wall)


def plan_only(campaign: Path, redis_srv: PrivateRedis, database: str,
              mark_after: bool = False) -> PassResult:
    """Only the plan of a pass (``--plan-only``): no worker, nothing sent; PostgreSQL's
    CPU during the plan goes into ``cpu_seconds``."""
    redis_srv.client.flushdb()
    before = backend_cpu(database)
    plan = plan_run(campaign, mark_after)
    after = backend_cpu(database)
    result = PassResult(workers=0, planned=plan.planned, batches=plan.batches,
                        launch_seconds=plan.launch_seconds,
                        batches_seconds=plan.batches_seconds,
                        enqueue_seconds=plan.enqueue_seconds)
    result.plan_seconds = plan.launch_seconds + plan.batches_seconds + plan.enqueue_seconds
    result.cpu_seconds = {"postgres": round(sum(
        cpu - before.get(pid, 0.0) for pid, cpu in after.items()), 2)}
    with contextlib.suppress(Exception):
        result.queue_bytes_after_enqueue = int(
            redis_srv.client.memory_usage("bulk") or 0)  # type: ignore[arg-type]
    return result


def run_pass(n_workers: int, campaign: Path, env: dict[str, str], workdir: Path,
             redis_srv: PrivateRedis, sink: SmtpSink, tag: str, timeout: float,
             progress: Callable[[str], None], database: str,
             profile_dir: Path | None = None) -> PassResult:
    from sqlalchemy import select

    from engine.db import session_scope
    from engine.models import CampaignRun
    from engine.outbox.rows import counts_by_status

    result = PassResult(workers=n_workers)
    redis_srv.client.flushdb()
    sink_before = sink.messages()
    progress(f"menyalakan {n_workers} worker Celery")
    workers = Workers(n_workers, env, workdir, tag)
    profilers = start_profilers(workers, profile_dir, tag) if profile_dir else []
    try:
        cpu_before = cpu_snapshot(workers, sink, redis_srv, database)
        progress("rencana + antre")
        t0 = time.perf_counter()
        plan = plan_run(campaign)
        run_id, result.planned = plan.run_id, plan.planned
        t3 = time.perf_counter()
        enqueue_wall = plan.enqueue_wall
        result.launch_seconds, result.batches_seconds = plan.launch_seconds, plan.batches_seconds
        result.enqueue_seconds = plan.enqueue_seconds
        result.plan_seconds = plan.launch_seconds + plan.batches_seconds + plan.enqueue_seconds
        result.batches = plan.batches
        with contextlib.suppress(Exception):
            result.queue_bytes_after_enqueue = int(
                redis_srv.client.memory_usage("bulk") or 0)  # type: ignore[arg-type]
        progress(f"{result.planned:,} penerima, {plan.batches} batch; mengirim")
        last_change, last_seen = time.monotonic(), -1
        done_at = t3
        while True:
            time.sleep(0.25)
            workers.sample()
            with session_scope() as session:
                status = session.scalar(select(CampaignRun.status)
                                        .where(CampaignRun.id == run_id))
            if status is not None and status.value != "running":
                done_at = time.perf_counter()
                result.finished = status.value == "finished"
                break
            seen = int(redis_srv.client.llen(TIMINGS_KEY))  # type: ignore[arg-type]
            if seen != last_seen:
                last_seen, last_change = seen, time.monotonic()
                progress(f"{seen}/{plan.batches} batch selesai")
            if time.monotonic() - last_change > timeout:
                done_at = time.perf_counter()
                break
        workers.sample()
        cpu_after = cpu_snapshot(workers, sink, redis_srv, database)
        before_pg, after_pg = cpu_before.pop("postgres"), cpu_after.pop("postgres")
        result.cpu_seconds = {k: round(cpu_after[k] - cpu_before[k], 2) for k in cpu_after}
        result.cpu_seconds["postgres"] = round(sum(
            cpu - before_pg.get(pid, 0.0) for pid, cpu in after_pg.items()), 2)
        result.worker_cpu_seconds = result.cpu_seconds["workers"]
        result.rss = workers.peaks_mb()
        result.load_avg = [round(x, 2) for x in os.getloadavg()]
    finally:
        stop_profilers(profilers)
        workers.stop()
    with session_scope() as session:
        result.counts = counts_by_status(session, run_id)
    result.sink_messages = sink.messages() - sink_before
    raw_records: list[str] = redis_srv.client.lrange(TIMINGS_KEY, 0, -1)  # type: ignore[assignment]
    records = [json.loads(r) for r in raw_records]
    sent = result.counts.get("sent", 0)
    last_end = max((r["end"] for r in records), default=time.time())
    # The send window: from the first batch handed to the broker to the last one done.
    result.send_seconds = round(max(1e-6, last_end - enqueue_wall), 3)
    result.total_seconds = round(done_at - t0, 3)
    result.messages_per_second = round(sent / result.send_seconds, 1)
    durations = [r["seconds"] * 1000 for r in records]
    result.batch_ms = {"p50": round(percentile(durations, 50), 1),
                       "p99": round(percentile(durations, 99), 1),
                       "max": round(max(durations, default=0.0), 1)}
    by_pid: dict[int, list[dict[str, Any]]] = {}
    for r in sorted(records, key=lambda r: r["start"]):
        by_pid.setdefault(r["pid"], []).append(r)
    result.rss_first_last_mb = [
        [round(rs[0]["rss_kb"] / 1024, 1), round(rs[-1]["rss_kb"] / 1024, 1)]
        for rs in by_pid.values()]
    for pid_records, peak in zip(by_pid.values(), result.rss, strict=False):
        peak["pool_mb"] = max(peak["pool_mb"],
                              round(max(r["hwm_kb"] for r in pid_records) / 1024, 1))
    return result


def relation_sizes(url: str) -> dict[str, Any]:
    """MB of each big table after the run (heap, indexes, total with TOAST) and of each
    index of ``delivery``: what a million rows cost on disk and in shared buffers."""
    from sqlalchemy import create_engine, text

    mb = 1024 * 1024
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            tables = [(*row, conn.execute(text(f'SELECT count(*) FROM "{row[0]}"')).scalar_one())
                      for row in conn.execute(text(
                          "SELECT c.relname, pg_relation_size(c.oid), pg_indexes_size(c.oid), "
                          "pg_total_relation_size(c.oid) FROM pg_class c WHERE c.relkind = 'r' "
                          "AND c.relname = ANY(:names) ORDER BY 4 DESC"),
                          {"names": list(SIZED_TABLES)}).all()]
            indexes = conn.execute(text(
                "SELECT indexrelname, pg_relation_size(indexrelid) FROM pg_stat_user_indexes "
                "WHERE relname = 'delivery' ORDER BY 2 DESC")).all()
    finally:
        engine.dispose()
    return {"tables_mb": {name: {"heap": round(heap / mb, 1), "indexes": round(idx / mb, 1),
                                 "total": round(total / mb, 1), "rows": int(rows)}
                          for name, heap, idx, total, rows in tables},
            "delivery_indexes_mb": {name: round(size / mb, 1) for name, size in indexes}}


# --------------------------------------------------------------------------- reporting
def build_report(args: argparse.Namespace, info: dict[str, Any], seed_s: float,
                 raw: dict[str, Any], main: PassResult, single: PassResult | None,
                 redis_peak: float, load_before: list[float]) -> dict[str, Any]:
    ratio = main.messages_per_second / raw["messages_per_second"] if raw[
        "messages_per_second"] else 0.0
    peak_rss = [max(w["pool_mb"], w["main_mb"]) for w in main.rss]
    report: dict[str, Any] = {
        "date": datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": info,
        "load_avg_before": load_before,
        "recipients": main.planned,
        "messages_per_second": main.messages_per_second,
        "raw_messages_per_second": raw["messages_per_second"],
        "ratio_to_raw": round(ratio, 3),
        "plan_seconds": round(main.plan_seconds, 3),
        "plan_breakdown_seconds": {"launch": round(main.launch_seconds, 3),
                                   "batches": round(main.batches_seconds, 3),
                                   "enqueue": round(main.enqueue_seconds, 3)},
        "send_seconds": main.send_seconds,
        "end_to_end_seconds_incl_plan": main.total_seconds,
        "batch_size": int(args.batch_size),
        "batches": main.batches,
        "batch_latency_ms": main.batch_ms,
        "peak_rss_mb_per_worker": peak_rss,
        "rss_detail_mb": main.rss,
        "rss_first_last_batch_mb": main.rss_first_last_mb,
        "redis_peak_mb": round(redis_peak, 2),
        "redis_queue_bytes_after_enqueue": main.queue_bytes_after_enqueue,
        "dkim": "rsa-sha256, 2048-bit key (OpenSSL via cryptography)",
        "counts": main.counts,
        "sink_messages": main.sink_messages,
        "finished": main.finished,
        "worker_cpu_seconds": main.worker_cpu_seconds,
        "cpu_seconds_during_send": main.cpu_seconds,
        "cpu_ms_per_message": {k: round(v * 1000 / max(1, main.counts.get("sent", 0)), 3)
                               for k, v in main.cpu_seconds.items()},
        "raw": raw,
        **capacity(main, info["nproc"]),
        "seed_seconds": round(seed_s, 1),
        "targets": TARGETS,
    }
    if single is not None:
        report["scaling"] = {
            "one_worker": {"recipients": single.planned,
                           "messages_per_second": single.messages_per_second,
                           "batch_latency_ms": single.batch_ms,
                           "peak_rss_mb": [max(w["pool_mb"], w["main_mb"]) for w in single.rss]},
            "two_workers": {"recipients": main.planned,
                            "messages_per_second": main.messages_per_second},
            "speedup": round(main.messages_per_second / single.messages_per_second, 2)
            if single.messages_per_second else None,
        }
    return report


def capacity(main: PassResult, nproc: int) -> dict[str, Any]:
    """What the run cost in CPU, and what that means on cores nobody else uses.

    The machine is shared: ``other_load_share`` is the part of all CPU time during the
    send that went to processes outside this benchmark.
    """
    sent = max(1, main.counts.get("sent", 0))
    cpu = main.cpu_seconds
    ours = sum(cpu.get(k, 0.0) for k in ("workers", "postgres", "smtp_sink", "redis", "bench"))
    total = cpu.get("machine_total", 0.0)
    others = max(0.0, cpu.get("machine_busy", 0.0) - ours)
    per_message = ours * 1000 / sent
    return {"cpu_ms_per_message_ours": round(per_message, 3),
            "ceiling_messages_per_second_on_free_cores": round(nproc * 1000 / per_message, 1)
            if per_message else None,
            "other_load_share": round(others / total, 3) if total else None}


def verdict(ok: bool) -> str:
    return "[green]ya[/]" if ok else "[red]tidak[/]"


def print_report(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not console.is_terminal:
        console = Console(width=110)  # make, CI logs: the table must not wrap
    m = report["machine"]
    table = Table(title=f"Benchmark end-to-end: {report['recipients']:,} penerima, "
                        f"{m['nproc']} core {m['cpu']}, beban awal {report['load_avg_before']}")
    table.add_column("Ukuran")
    table.add_column("Hasil", justify="right")
    table.add_column("Target", justify="right")
    table.add_column("Tercapai", justify="center")
    mps, raw, ratio = (report["messages_per_second"], report["raw_messages_per_second"],
                       report["ratio_to_raw"])
    table.add_row("Pesan/detik end-to-end (2 worker)", f"{mps:,.0f}", ">= 1.000",
                  verdict(mps >= TARGETS["messages_per_second"]))
    table.add_row("Batas mentah smtplib (1 koneksi)", f"{raw:,.0f}", "", "")
    table.add_row("Rasio terhadap batas mentah", f"{ratio:.2f}", ">= 0,40",
                  verdict(ratio >= TARGETS["ratio_to_raw"]))
    plan = report["plan_seconds"]
    scaled_target = min(TARGETS["plan_seconds_max"],
                        TARGETS["plan_seconds_100k"] * max(1, report["recipients"]) / 100_000)
    pb = report["plan_breakdown_seconds"]
    table.add_row("Rencana + antre (detik)",
                  f"{plan:.2f} ({pb['launch']:.2f}+{pb['batches']:.2f}+{pb['enqueue']:.2f})",
                  f"< {scaled_target:.0f}", verdict(plan < scaled_target))
    table.add_row("Waktu kirim / total termasuk rencana (detik)",
                  f"{report['send_seconds']:.1f} / {report['end_to_end_seconds_incl_plan']:.1f}",
                  "", "")
    lat = report["batch_latency_ms"]
    table.add_row(f"Latensi per batch ({report['batch_size']} pesan) p50 / p99 (ms)",
                  f"{lat['p50']:,.0f} / {lat['p99']:,.0f}", "", "")
    rss = report["peak_rss_mb_per_worker"]
    flat = report["rss_first_last_batch_mb"]
    table.add_row("RSS puncak per worker (MB)", " / ".join(f"{x:.0f}" for x in rss), "< 150",
                  verdict(bool(rss) and max(rss) < TARGETS["rss_mb"]))
    table.add_row("RSS batch pertama -> terakhir (MB)",
                  ", ".join(f"{a:.0f}->{b:.0f}" for a, b in flat), "datar", "")
    redis_target = TARGETS["redis_mb_1m" if report["recipients"] >= 1_000_000 else "redis_mb"]
    table.add_row("Redis puncak (MB)", f"{report['redis_peak_mb']:.1f}", f"< {redis_target:.0f}",
                  verdict(report["redis_peak_mb"] < redis_target))
    scaling = report.get("scaling")
    if scaling:
        one = scaling["one_worker"]
        table.add_row("Skala 1 -> 2 worker (pesan/detik)",
                      f"{one['messages_per_second']:,.0f} ({one['recipients']:,}) -> "
                      f"{mps:,.0f}  x{scaling['speedup']}", "", "")
    per = report["cpu_ms_per_message"]
    table.add_row("CPU per pesan (ms): worker / PostgreSQL / smtp-sink",
                  f"{per.get('workers', 0):.2f} / {per.get('postgres', 0):.2f} / "
                  f"{per.get('smtp_sink', 0):.2f}", "", "")
    ceiling = report["ceiling_messages_per_second_on_free_cores"]
    table.add_row(f"Plafon bila {m['nproc']} core bebas (pesan/detik)",
                  f"{ceiling:,.0f}" if ceiling else "-", "", "")
    share = report["other_load_share"]
    table.add_row("Porsi CPU mesin dipakai proses lain saat kirim",
                  f"{share:.0%}" if share is not None else "-", "", "")
    counts = report["counts"]
    table.add_row("Status kotak keluar", ", ".join(f"{k}={v:,}" for k, v in counts.items() if v),
                  "", "")
    table.add_row("Diterima smtp-sink", f"{report['sink_messages']:,}", "", "")
    table.add_row("DKIM", report["dkim"], "", "")
    for name, size in (report.get("sizes") or {}).get("tables_mb", {}).items():
        table.add_row(f"Tabel {name} (MB): data + indeks = total",
                      f"{size['heap']:,.1f} + {size['indexes']:,.1f} = {size['total']:,.1f}",
                      "", "")
    console.print(table)


def append_performance_row(report: dict[str, Any], label: str) -> None:
    m = report["machine"]
    scaling = report.get("scaling") or {}
    one = (scaling.get("one_worker") or {}).get("messages_per_second")
    lat = report["batch_latency_ms"]
    row = (f"| {report['date'][:16].replace('T', ' ')} | {label} | {m['nproc']} x {m['cpu']}, "
           f"{m['ram_gb']:.0f} GB, load {report['load_avg_before'][0]:.1f} | "
           f"{report['recipients']:,} | {report['messages_per_second']:,.0f} | "
           f"{report['raw_messages_per_second']:,.0f} | {report['ratio_to_raw']:.2f} | "
           f"{report['plan_seconds']:.2f} | {lat['p50']:,.0f} / {lat['p99']:,.0f} | "
           f"{' / '.join(f'{x:.0f}' for x in report['peak_rss_mb_per_worker'])} | "
           f"{report['redis_peak_mb']:.1f} | "
           f"{f'{one:,.0f} -> ' if one else ''}{report['messages_per_second']:,.0f} |\n")
    if not PERF_DOC.exists():
        return
    PERF_DOC.write_text(with_run_row(PERF_DOC.read_text(encoding="utf-8"), row),
                        encoding="utf-8")


def with_run_row(doc: str, row: str) -> str:
    """``doc`` with ``row`` after the last row of the table under ``## Runs`` (sections
    may follow it; appending at the end of the file put rows under the wrong one)."""
    lines = doc.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.startswith("## Runs")), None)
    if start is None:
        return doc + row
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")),
               len(lines))
    last = max((i for i in range(start, end) if lines[i].startswith("|")), default=end - 1)
    return "".join([*lines[:last + 1], row, *lines[last + 1:]])


# --------------------------------------------------------------------------- main
@contextlib.contextmanager
def stage(console: Any, text: str) -> Iterator[Callable[[str], None]]:
    with console.status(text) as status:
        yield lambda msg: status.update(f"{text}: {msg}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--scaling-recipients", type=int, default=0,
                        help="recipients of the one-worker pass (default N/5, >= 2,000; "
                             "0 after --no-scaling)")
    parser.add_argument("--no-scaling", action="store_true", help="skip the one-worker pass")
    parser.add_argument("--batch-size", type=int, default=250)
    parser.add_argument("--raw-messages", type=int, default=20_000,
                        help="messages of the raw smtplib measurement (at most 20 s)")
    parser.add_argument("--timeout", type=float, default=120.0,
                        help="give up after this many seconds without a finished batch")
    parser.add_argument("--keep-db", action="store_true", help="keep the scratch database")
    parser.add_argument("--output", type=Path, default=RESULTS, help="the JSON report")
    parser.add_argument("--no-doc", action="store_true",
                        help="do not append a row to docs/performance.md")
    parser.add_argument("--label", default="", help="label of the row in docs/performance.md")
    parser.add_argument("--plan-only", action="store_true",
                        help="seed, launch, batch and enqueue, print the phases; send nothing")
    parser.add_argument("--mark-after", action="store_true",
                        help="the old plan: insert, then mark the rows as handed over")
    parser.add_argument("--alternate", action="store_true",
                        help="with --plan-only: every second plan uses --mark-after")
    parser.add_argument("--repeat", type=int, default=1,
                        help="N campaigns of --recipients each, one after another, on the "
                             "same services and database (the outbox grows)")
    parser.add_argument("--profile", type=Path, default=None,
                        help="record py-spy profiles (collapsed stacks) of the workers here")
    args = parser.parse_args()
    n = args.recipients
    if args.plan_only or args.repeat > 1:
        args.no_scaling, args.no_doc = True, True
    scale_n = 0 if args.no_scaling else (args.scaling_recipients or max(2000, n // 5))
    scale_n = min(scale_n, n)

    from rich.console import Console

    console = Console()
    info = machine()
    load_before = [round(x, 2) for x in os.getloadavg()]
    workdir = Path(tempfile.mkdtemp(prefix="umkm-bench-"))
    cleanups: list[Callable[[], None]] = []
    try:
        sink, redis_srv, db, env = start_services(workdir, args.keep_db, args.batch_size,
                                                  cleanups)
        from engine.db import migrate
        from workers.celery_app import reconfigure

        reconfigure()
        with stage(console, "migrasi + isi data") as progress:
            migrate()
            from bench.seed import seed

            progress(f"{n:,} pelanggan")
            seeded = seed(db.url, n, scale_n)
        console.print(f"[dim]data: {seeded.customers:,} pelanggan, {seeded.orders:,} pesanan, "
                      f"{seeded.products} produk dalam {seeded.seconds:.1f} dtk[/]")
        with stage(console, "batas mentah smtplib") as progress:
            raw = measure_raw(sink.port, sample_messages(200), args.raw_messages, 20.0)
        console.print(f"[dim]mentah: {raw['messages_per_second']:,.0f} pesan/dtk "
                      f"({raw['bytes_per_message']:,} B per pesan)[/]")
        if args.plan_only:
            run_plan_only(console, args, workdir, redis_srv, db)
            return
        if args.repeat > 1:
            run_repeated(console, args, info, seeded.seconds, raw, env, workdir, redis_srv,
                         sink, db, load_before)
            return
        main_campaign = write_campaign(workdir, "bench-promo-2-worker", "bench")
        with stage(console, f"2 worker, {n:,} penerima") as progress:
            main_pass = run_pass(2, main_campaign, env, workdir, redis_srv, sink, "two",
                                 args.timeout, progress, db.name, args.profile)
        console.print(f"[dim]2 worker: {main_pass.messages_per_second:,.0f} pesan/dtk[/]")
        single = None
        if scale_n:
            one_campaign = write_campaign(workdir, "bench-promo-1-worker", "bench-scale")
            with stage(console, f"1 worker, {scale_n:,} penerima") as progress:
                single = run_pass(1, one_campaign, env, workdir, redis_srv, sink, "one",
                                  args.timeout, progress, db.name, args.profile)
        report = build_report(args, info, seeded.seconds, raw, main_pass, single,
                              redis_srv.peak_mb(), load_before)
        report["load_avg_after"] = [round(x, 2) for x in os.getloadavg()]
        report["sizes"] = relation_sizes(db.url)
        print_report(report)
        output = args.output if args.output.is_absolute() else ROOT / args.output
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
        console.print(f"[dim]ditulis: {output}[/]")
        if not args.no_doc:
            append_performance_row(report, args.label or f"{n // 1000}k")
            console.print(f"[dim]baris baru: {PERF_DOC.relative_to(ROOT)}[/]")
        if not main_pass.finished:
            console.print("[red]run tidak selesai: lihat status kotak keluar di atas[/]")
            console.print(f"[dim]log: {workdir}[/]")
            raise SystemExit(1)
    finally:
        for cleanup in reversed(cleanups):
            with contextlib.suppress(Exception):
                cleanup()
        os.chdir(ROOT)
        if "report" in locals() and locals()["report"].get("finished"):
            shutil.rmtree(workdir, ignore_errors=True)


def phases(result: PassResult) -> str:
    return (f"{result.plan_seconds:.2f} s = launch {result.launch_seconds:.2f} + batches "
            f"{result.batches_seconds:.2f} + enqueue {result.enqueue_seconds:.2f}")


def run_plan_only(console: Any, args: argparse.Namespace, workdir: Path,
                  redis_srv: PrivateRedis, db: ScratchDatabase) -> None:
    """``--plan-only``: ``--repeat`` plans of distinct campaigns on one database."""
    for index in range(args.repeat):
        load = [round(x, 2) for x in os.getloadavg()]
        campaign = write_campaign(workdir, f"bench-plan-{index + 1}", "bench",
                                  cap=max(3, args.repeat))
        mark_after = args.mark_after or (args.alternate and index % 2 == 1)
        result = plan_only(campaign, redis_srv, db.name, mark_after)
        pg_ms = result.cpu_seconds["postgres"] * 1000 / max(1, result.planned)
        console.print(f"plan {index + 1}{' (mark after)' if mark_after else ''}: "
                      f"{result.planned:,} rows, {result.batches} batches, "
                      f"{phases(result)}; PostgreSQL {pg_ms:.3f} ms/row; "
                      f"load {load} -> {[round(x, 2) for x in os.getloadavg()]}", soft_wrap=True)
    sizes = relation_sizes(db.url)
    console.print(json.dumps(sizes, indent=1))


def run_repeated(console: Any, args: argparse.Namespace, info: dict[str, Any],
                 seed_s: float, raw: dict[str, Any], env: dict[str, str], workdir: Path,
                 redis_srv: PrivateRedis, sink: SmtpSink, db: ScratchDatabase,
                 load_before: list[float]) -> None:
    """``--repeat N``: N distinct campaigns to the same audience, one after another, on
    the same services and database; a line per run and whether the last ones slowed."""
    reports: list[dict[str, Any]] = []
    for index in range(args.repeat):
        load = [round(x, 2) for x in os.getloadavg()]
        campaign = write_campaign(workdir, f"bench-repeat-{index + 1}", "bench",
                                  cap=max(3, args.repeat))
        with stage(console, f"run {index + 1}/{args.repeat}") as progress:
            result = run_pass(2, campaign, env, workdir, redis_srv, sink, f"r{index + 1}",
                              args.timeout, progress, db.name)
        report = build_report(args, info, seed_s, raw, result, None, redis_srv.peak_mb(), load)
        report["load_avg_after"] = [round(x, 2) for x in os.getloadavg()]
        report["sizes"] = relation_sizes(db.url)
        reports.append(report)
        console.print(repeat_line(index + 1, report, result), soft_wrap=True)
        if not result.finished:
            console.print("[red]run tidak selesai[/]")
            raise SystemExit(1)
    console.print(repeat_verdict(reports))
    output = args.output if args.output.is_absolute() else ROOT / args.output
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(reports, indent=2, ensure_ascii=False) + "\n")
    console.print(f"[dim]ditulis: {output}[/]")


def repeat_line(number: int, report: dict[str, Any], result: PassResult) -> str:
    per = report["cpu_ms_per_message"]
    delivery = report["sizes"]["tables_mb"].get("delivery", {})
    rss = " / ".join(f"{x:.0f}" for x in report["peak_rss_mb_per_worker"])
    return (f"run {number}: {report['messages_per_second']:,.0f} msg/s, raw "
            f"{report['raw_messages_per_second']:,.0f}, ratio {report['ratio_to_raw']:.2f}; "
            f"plan {phases(result)}; CPU ms/msg workers {per.get('workers', 0):.2f} / "
            f"PostgreSQL {per.get('postgres', 0):.2f} / smtp-sink {per.get('smtp_sink', 0):.2f}"
            f"; RSS {rss} MB; Redis {report['redis_peak_mb']:.1f} MB; delivery "
            f"{delivery.get('rows', 0):,} rows, {delivery.get('heap', 0):.0f} + "
            f"{delivery.get('indexes', 0):.0f} MB; load {report['load_avg_before']} -> "
            f"{report['load_avg_after']}")


SLOWER_BEYOND_NOISE = 0.15  # runs on this shared machine differ by up to ~10 % alone


def repeat_verdict(reports: list[dict[str, Any]]) -> str:
    """Whether the last run is slower than the first beyond noise (throughput, plan
    time per recipient, PostgreSQL CPU per message)."""
    first, last = reports[0], reports[-1]
    checks = {
        "msg/s": last["messages_per_second"] < first["messages_per_second"]
        * (1 - SLOWER_BEYOND_NOISE),
        "plan s": last["plan_seconds"] > first["plan_seconds"] * (1 + SLOWER_BEYOND_NOISE),
        "PostgreSQL ms/msg": last["cpu_ms_per_message"].get("postgres", 0)
        > first["cpu_ms_per_message"].get("postgres", 0) * (1 + SLOWER_BEYOND_NOISE),
    }
    slower = [name for name, worse in checks.items() if worse]
    head = f"run {len(reports)} vs run 1 (noise {SLOWER_BEYOND_NOISE:.0%}): "
    return head + (f"SLOWER in {', '.join(slower)}" if slower else "not slower")


if __name__ == "__main__":
    main()
