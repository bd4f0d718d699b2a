"""``umkm serve``: web + worker + scheduler in one process (the embedded default), or
just the web app in production where Celery workers and beat run as their own processes.

Embedded mode runs a *real* Celery worker (thread pool, beat embedded) on kombu's
filesystem broker under ``var/broker``: the same tasks as production, no Redis needed.
"""

from __future__ import annotations

import threading

import typer

from engine.cli.app import app, console
from engine.cli.business import ensure_database
from engine.common.i18n import t
from engine.config import get_settings


def _run_web(host: str, port: int) -> None:
    import uvicorn

    from web.app import serving_app

    config = uvicorn.Config(serving_app(), host=host, port=port, log_level="info",
                            proxy_headers=True)
    uvicorn.Server(config).run()


def worker_argv(concurrency: int, beat: bool) -> list[str]:
    """Thread pool: the embedded rate limiter and SQLite live in this one process."""
    argv = ["worker", "-P", "threads", "-c", str(concurrency), "-Q",
            "transactional,bulk,beat", "--without-gossip", "--without-mingle",
            "--without-heartbeat", "-l", "INFO"]
    if beat:
        argv.append("-B")
    return argv


@app.command("serve")
def serve_command(
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int = typer.Option(8000, "--port"),
    web_only: bool = typer.Option(False, "--web-only", help="Hanya web (produksi)."),
    concurrency: int = typer.Option(2, "--concurrency", min=1, max=16),
) -> None:
    """Jalankan web, pekerja dan penjadwal (mode tertanam), atau hanya web (--web-only)."""
    ensure_database()
    settings = get_settings()
    if web_only or not settings.embedded:
        console.print(t("serve.web_only", host=host, port=port))
        _run_web(host, port)
        return
    console.print(t("serve.embedded", host=host, port=port))
    web = threading.Thread(target=_run_web, args=(host, port), name="web", daemon=True)
    web.start()
    from workers.celery_app import app as celery_app

    celery_app.worker_main(worker_argv(concurrency, beat=True))
