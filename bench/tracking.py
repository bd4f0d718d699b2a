"""Tracking benchmark: open pixel and click redirect under ``wrk``, against a bare route.

``python bench/tracking.py`` (needs ``wrk``: ``scripts/ensure-system-deps.sh --bench``).
What it does:

1. a scratch PostgreSQL database (created from the ``test`` database, dropped at the
   end) and a private ``redis-server`` (see :mod:`bench.e2e`); migrates, seeds the demo
   catalog, and one sent campaign run: a delivery per demo customer with an e-mail
   address, its products and a tracked link per product;
2. starts the app with uvicorn (``REDIS_URL`` set: events go to the stream), a bare
   Starlette app answering the same GIF (:data:`bare_app`) with the *same* uvicorn
   settings (:class:`ServerOptions`: 1 worker, uvloop, httptools unless told), and
   ``umkm tracking consume``;
3. ``wrk`` against the bare route, the pixel, the bare route again and the click (tokens
   rotating over every delivery and link; each ratio is to the bare run just before),
   then the pixel again while the consumer is SIGKILLed midway and restarted; the same
   pixel without Redis (one commit per request: the old path);
4. after each run it waits until the stream is drained and prints requests/s, p50/p99,
   the ratio to the bare route, and "accepted N, stored N": accepted = entries the app
   appended (``XINFO STREAM`` entries-added, counted by Redis), stored = new
   ``engagement_event`` rows. Every open and click is one row, so they must be equal.

Figures are printed, never asserted. Load average of the machine is printed beside them,
and CPU per request of every process of ours (server, writer, Redis, PostgreSQL, wrk).
``--connections`` defaults to 32: what a reverse proxy in front of the app keeps open
(nginx's upstream ``keepalive 16`` per worker, two workers on two cores).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from starlette.applications import Starlette  # noqa: E402
from starlette.requests import Request  # noqa: E402
from starlette.responses import Response  # noqa: E402
from starlette.routing import Route  # noqa: E402

from bench.e2e import (  # noqa: E402
    SECRET,
    PrivateRedis,
    ScratchDatabase,
    backend_cpu,
    children,
    cpu_seconds,
    free_port,
    stop_profilers,
    wait_until,
)
from web.tracking_routes import NO_STORE, PIXEL  # noqa: E402


async def _bare_pixel(request: Request) -> Response:
    return Response(PIXEL, media_type="image/gif", headers=NO_STORE)


#: The yardstick: Starlette alone, the same GIF and headers, no token, no buffer.
bare_app = Starlette(routes=[Route("/t/o/{token}", _bare_pixel)])

LUA = """
local paths = {}
for line in io.lines("%s") do paths[#paths + 1] = line end
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", paths[(i %% #paths) + 1], {["User-Agent"] = "%s"})
end
"""
BROWSER = ("Mozilla/5.0 (Linux; Android 13; SM-A145F) AppleWebKit/537.36 (KHTML, like Gecko) "
           "Chrome/124.0 Mobile Safari/537.36")


# --------------------------------------------------------------------------- data
@dataclass
class Targets:
    opens: list[str]
    clicks: list[str]


def seed(url: str) -> Targets:
    """Demo catalog plus one sent run: deliveries, their products and tracked links."""
    from bench.seed import seed_demo_catalog
    from engine.config import Settings
    from engine.db import migrate, session_factory

    settings = Settings(database_url=url)
    migrate(settings)
    seed_demo_catalog(url)
    with session_factory(settings)() as session:
        targets = _sent_run(session)
        session.commit()
    return targets


def _sent_run(session: Any) -> Targets:
    from sqlalchemy import select

    from engine.engagement.tracking import make_click_token, make_open_token, url_hash
    from engine.models import (
        Campaign,
        CampaignRun,
        Customer,
        Delivery,
        DeliveryProduct,
        DeliveryStatus,
        Product,
        TrackedLink,
        utcnow,
    )

    campaign = Campaign(key="bench-tracking", name="Bench tracking", type="promotional",
                        spec={}, spec_hash="0" * 64)
    session.add(campaign)
    session.flush()
    run = CampaignRun(campaign_id=campaign.id, trigger_key="bench-tracking")
    session.add(run)
    session.flush()
    products = list(session.scalars(select(Product).order_by(Product.id).limit(30)))
    links = []
    for product in products:
        target = f"https://umkm.ttskab.go.id/produk/{product.id}?utm_source=dinas-tts"
        links.append(TrackedLink(run_id=run.id, url=target, url_hash=url_hash(target),
                                 product_id=product.id, business_id=product.business_id))
    session.add_all(links)
    sent = utcnow() - timedelta(hours=2)
    customers = list(session.scalars(select(Customer).where(Customer.email.is_not(None))))
    targets = Targets([], [])
    for n, customer in enumerate(customers):
        product = products[n % len(products)]
        delivery = Delivery(run_id=run.id, channel="email", recipient=customer.email,
                            customer_id=customer.id, business_id=product.business_id,
                            status=DeliveryStatus.sent, sent_at=sent, created_at=sent)
        session.add(delivery)
        session.flush()
        session.add(DeliveryProduct(delivery_id=delivery.id, product_id=product.id,
                                    business_id=product.business_id, position=0))
        targets.opens.append(f"/t/o/{make_open_token(delivery.id)}")
        targets.clicks.append(f"/t/c/{make_click_token(delivery.id, links[n % len(links)].id)}")
    return targets


# --------------------------------------------------------------------------- processes
def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    out = open(log, "ab")  # noqa: SIM115 (the child keeps it)
    return subprocess.Popen(args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                            start_new_session=True)


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass(frozen=True)
class ServerOptions:
    """The uvicorn settings of every server of a run: the bare route and the app get the
    same ones, so the ratio compares the apps and not their servers."""

    workers: int = 1
    loop: str = "uvloop"
    http: str = "httptools"

    def args(self) -> list[str]:
        return ["--workers", str(self.workers), "--loop", self.loop, "--http", self.http]

    def __str__(self) -> str:
        return f"uvicorn --workers {self.workers} --loop {self.loop} --http {self.http}"


def uvicorn(app: str, port: int, env: dict[str, str], log: Path, options: ServerOptions,
            factory: bool) -> subprocess.Popen[bytes]:
    args = [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port),
            *options.args(), "--no-access-log", "--log-level", "warning"]
    proc = start(args + (["--factory"] if factory else []), env, log)
    if not wait_until(lambda: _answers(port) or proc.poll() is not None, 120):
        raise SystemExit(f"uvicorn {app} tidak menjawab; lihat {log}")
    if proc.poll() is not None:
        raise SystemExit(f"uvicorn {app} berhenti; lihat {log}")
    return proc


def _answers(port: int) -> bool:
    import socket

    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
        return True
    return False


def consumer(env: dict[str, str], log: Path, *extra: str) -> subprocess.Popen[bytes]:
    return start([sys.executable, "-m", "engine.cli", "tracking", "consume",
                  "--name", "bench", *extra], env, log)


def profile(server: subprocess.Popen[bytes], out_dir: Path, tag: str) -> subprocess.Popen[bytes]:
    """py-spy (raw collapsed stacks, every worker) on the app server during one run."""
    import shutil

    binary = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    out_dir.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen([binary, "record", "--pid", str(server.pid), "--subprocesses",
                             "--rate", "250", "--nonblocking", "--format", "raw",
                             "--output", str(out_dir / f"{tag}-server.txt")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)  # attached before wrk starts
    return proc


# --------------------------------------------------------------------------- wrk
class CpuMeter:
    """CPU seconds of named process trees between :meth:`start` and :meth:`per_request`:
    where a request's time goes (the machine is shared, wall clock alone misleads)."""

    def __init__(self) -> None:
        self.pids: dict[str, Callable[[], list[int]]] = {}
        self._mark: dict[str, float] = {}

    def watch(self, name: str, pids: Callable[[], list[int]]) -> None:
        self.pids[name] = pids

    def _now(self) -> dict[str, float]:
        return {name: sum(cpu_seconds(p) for pid in get() for p in [pid, *children(pid)])
                for name, get in self.pids.items()}

    def start(self) -> None:
        self._mark = self._now()

    def per_request(self, requests: int) -> str:
        now = self._now()
        used = {name: (now[name] - self._mark.get(name, 0.0)) / max(requests, 1) * 1e6
                for name in now}
        return ", ".join(f"{name} {value:.0f}" for name, value in used.items())


@dataclass
class WrkResult:
    requests: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    cpu: str = ""


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(value) * _UNITS[unit]


def _children_cpu() -> float:
    """CPU seconds of this process's reaped children: wrk's, once it has exited."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def wrk(port: int, paths: list[str], seconds: int, connections: int, workdir: Path,
        during: Callable[[], None] | None = None, meter: CpuMeter | None = None) -> WrkResult:
    """One ``wrk --latency`` run over ``paths`` (rotating); ``during`` runs midway."""
    listing = workdir / f"paths-{port}-{len(paths)}.txt"
    listing.write_text("\n".join(paths) + "\n")
    script = workdir / "rotate.lua"
    script.write_text(LUA % (listing, BROWSER))
    reaped = _children_cpu()
    proc = subprocess.Popen(["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency",
                             "-s", str(script), f"http://127.0.0.1:{port}"],
                            stdout=subprocess.PIPE, text=True)
    if meter is not None:
        meter.start()
    if during is not None:
        time.sleep(seconds / 2)
        during()
    out, _ = proc.communicate()
    latency = dict(re.findall(r"^\s+(50|99)%\s+(\S+)$", out, re.M))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    result = WrkResult(int(re.search(r"(\d+) requests in", out).group(1)),  # type: ignore[union-attr]
                     float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
                     _ms(latency["50"]), _ms(latency["99"]),
                     int(errors.group(1)) if errors else 0)
    if meter is not None:
        wrk_us = (_children_cpu() - reaped) / max(result.requests, 1) * 1e6
        result.cpu = f"{meter.per_request(result.requests)}, wrk {wrk_us:.0f}"
    return result


# --------------------------------------------------------------------------- counting
class Counter:
    """Accepted (entries Redis took) and stored (rows) since the last :meth:`take`."""

    def __init__(self, redis_url: str, database_url: str) -> None:
        import redis
        from sqlalchemy import create_engine

        self.redis = redis.Redis.from_url(redis_url)
        self.engine = create_engine(database_url)
        self.accepted, self.stored = self._added(), self._rows()  # the demo has events
        self.first = (self.accepted, self.stored)

    def _added(self) -> int:
        if not self.redis.exists("umkm:tracking:events"):
            return 0
        info: Any = self.redis.xinfo_stream("umkm:tracking:events")
        return int(info["entries-added"])

    def _rows(self) -> int:
        from sqlalchemy import text

        with self.engine.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM engagement_event")).scalar_one())

    def drained(self) -> bool:
        if not self.redis.exists("umkm:tracking:events"):
            return True
        pending: Any = self.redis.xpending("umkm:tracking:events", "tracking-writers")
        return self.redis.xlen("umkm:tracking:events") == 0 and pending["pending"] == 0

    def take(self) -> tuple[int, int]:
        """Wait until the stream is drained, then the new accepted and stored counts.

        A request wrk gave up on at its deadline may still be answered (and appended)
        by the server just after: one second of grace, then the counts."""
        time.sleep(1.0)
        if not wait_until(self.drained, 600, step=0.2):
            print("  ! antrean belum kosong setelah 600 s")
        added, rows = self._added(), self._rows()
        result = (added - self.accepted, rows - self.stored)
        self.accepted, self.stored = added, rows
        return result


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def report(name: str, result: WrkResult, bare: WrkResult | None,
           counts: tuple[int, int] | None) -> dict[str, Any]:
    ratio = f"{result.rps / bare.rps:.2f}" if bare else "1.00"
    line = (f"{name:<26} {result.rps:>9.0f} req/s  p50 {result.p50_ms:>7.2f} ms  "
            f"p99 {result.p99_ms:>7.2f} ms  ratio {ratio:>5}  load {loadavg()}")
    if result.errors:
        line += f"  non-2xx/3xx {result.errors}"
    if result.cpu:
        line += f"\n{'':<26} CPU us/request: {result.cpu}"
    if counts is not None:
        line += f"\n{'':<26} wrk {result.requests}, accepted {counts[0]}, stored {counts[1]}"
        line += "  OK" if counts[0] == counts[1] else "  MISMATCH"
    print(line, flush=True)
    return {"name": name, "rps": result.rps, "p50": result.p50_ms, "p99": result.p99_ms,
            "ratio": ratio, "counts": counts}


def verdict(runs: list[tuple[WrkResult, WrkResult]]) -> None:
    """Issue 22's figures for the pixel and the click, printed (never asserted): the
    worst requests/s, ratio to the bare route next to it and p99, against the bar."""
    worst_rps = min(run.rps for run, _ in runs)
    worst_ratio = min(run.rps / bare.rps for run, bare in runs)
    worst_p99 = max(run.p99_ms for run, _ in runs)
    print(f"issue 22 bar (pixel, click): >= 2000 req/s: {worst_rps:.0f}, "
          f">= 0.40 of bare: {worst_ratio:.2f}, p99 < 100 ms: {worst_p99:.1f}", flush=True)


# --------------------------------------------------------------------------- main
def _use(env: dict[str, str]) -> None:
    """This process on the scratch services too (it seeds and signs the tokens)."""
    from engine.config import reset_settings

    os.environ.update(env)
    reset_settings()


def run(args: argparse.Namespace, workdir: Path) -> None:
    redis_srv = PrivateRedis(workdir)
    database = ScratchDatabase(keep=False)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        env = {**os.environ, "DATABASE_URL": database.url, "REDIS_URL": redis_srv.url,
               "SECRET_KEY": SECRET, "VAR_DIR": str(workdir / "var"), "UMKM_LANG": "id"}
        _use(env)
        targets = seed(database.url)
        print(f"{len(targets.opens)} pengiriman, {len(set(targets.clicks))} token klik; "
              f"load {loadavg()}", flush=True)
        app_port, bare_port, direct_port = free_port(), free_port(), free_port()
        log = workdir / "bench.log"
        server = ServerOptions(args.workers, args.loop, args.http)
        print(f"{server}, wrk -t2 -c{args.connections} -d{args.seconds}s", flush=True)
        procs.append(uvicorn("bench.tracking:bare_app", bare_port, env, log, server,
                             factory=False))
        procs.append(uvicorn("web.app:app_factory", app_port, env, log, server,
                             factory=True))
        consumers = [consumer(env, log)]
        procs.append(consumers[0])
        counter = Counter(redis_srv.url, database.url)
        seconds, conns = args.seconds, args.connections

        def meter(server: subprocess.Popen[bytes]) -> CpuMeter:
            found = CpuMeter()
            found.watch("server", lambda: [server.pid])
            found.watch("consumer", lambda: [c.pid for c in consumers if c.poll() is None])
            found.watch("redis", lambda: [redis_srv.proc.pid])
            found.watch("postgres", lambda: list(backend_cpu(database.name)))
            return found

        for port, paths in ((bare_port, targets.opens), (app_port, targets.opens),
                            (app_port, targets.clicks)):  # warm-up: imports, caches
            wrk(port, paths, 2, conns, workdir)
        counter.take()
        profiler = profile(procs[0], args.profile, "bare") if args.profile else None
        bare = wrk(bare_port, targets.opens, seconds, conns, workdir, meter=meter(procs[0]))
        if profiler is not None:
            stop_profilers([profiler])
        report("bare Starlette GIF", bare, None, None)
        profiler = profile(procs[1], args.profile, "pixel") if args.profile else None
        pixel = wrk(app_port, targets.opens, seconds, conns, workdir, meter=meter(procs[1]))
        if profiler is not None:
            stop_profilers([profiler])
        report("/t/o pixel (stream)", pixel, bare, counter.take())
        # The machine is shared: the bare route again right before the click, so each
        # ratio compares runs seconds apart, not a minute.
        bare_again = wrk(bare_port, targets.opens, seconds, conns, workdir,
                         meter=meter(procs[0]))
        report("bare Starlette GIF (again)", bare_again, None, None)
        clicks = wrk(app_port, targets.clicks, seconds, conns, workdir, meter=meter(procs[1]))
        report("/t/c click (stream)", clicks, bare_again, counter.take())

        def kill_and_restart() -> None:
            stop(consumers[0], signal.SIGKILL)
            print(f"  consumer SIGKILL (pid {consumers[0].pid}), restarted", flush=True)
            consumers.append(consumer(env, log))
            procs.append(consumers[-1])

        killed = wrk(app_port, targets.opens, seconds, conns, workdir, kill_and_restart)
        report("/t/o + consumer SIGKILL", killed, bare_again, counter.take())
        verdict([(pixel, bare), (clicks, bare_again)])

        direct_env = {k: v for k, v in env.items() if k != "REDIS_URL"}
        procs.append(uvicorn("web.app:app_factory", direct_port, direct_env, log,
                             server, factory=True))
        wrk(direct_port, targets.opens, 2, conns, workdir)  # warm-up
        time.sleep(1.0)
        before = counter._rows()
        direct = wrk(direct_port, targets.opens, seconds, conns, workdir,
                     meter=meter(procs[-1]))
        rows = counter._rows() - before
        counter.stored += rows
        report("/t/o direct (no Redis)", direct, bare, None)
        print(f"{'':<26} wrk {direct.requests}, stored {rows} (commit per request)")
        accepted = counter._added() - counter.first[0]
        print(f"total stream runs: accepted {accepted}, stored "
              f"{counter.stored - rows - counter.first[1]}")
    finally:
        for proc in reversed(procs):
            stop(proc)
        with contextlib.suppress(Exception):
            from engine.db import dispose_engines

            dispose_engines()
        database.drop()
        redis_srv.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10, help="duration of each wrk run")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=1, help="uvicorn workers per app")
    parser.add_argument("--profile", type=Path, default=None,
                        help="record a py-spy profile of the app server (pixel run) here")
    parser.add_argument("--loop", default="uvloop", choices=["uvloop", "asyncio"],
                        help="uvicorn event loop (both apps)")
    parser.add_argument("--http", default="httptools", choices=["httptools", "h11"],
                        help="uvicorn HTTP parser (both apps)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="umkm-bench-tracking-") as tmp:
        run(args, Path(tmp))


if __name__ == "__main__":
    main()
