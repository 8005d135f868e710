"""``verihook worker``: run the delivery worker until SIGTERM (or, with ``--drain``, until
nothing is due). Logs one JSON line per attempt on stderr."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Coroutine
from typing import Annotated, Any

import typer

from verihook.cli.errors import fail, reports_errors
from verihook.cli.gc_tuning import tune_gc_for_serving
from verihook.cli.options import DatabaseOption
from verihook.delivery.metrics import WorkerMetrics
from verihook.delivery.worker import Worker
from verihook.store import DEFAULT_DATABASE_URL

__all__ = ["worker"]


@reports_errors
def worker(
    concurrency: Annotated[
        int, typer.Option("--concurrency", min=1, max=10000, help="Attempts in flight at most.")
    ] = 64,
    drain: Annotated[
        bool, typer.Option("--drain", help="Exit once nothing is due (for scripts and cron).")
    ] = False,
    allow_private_networks: Annotated[
        bool,
        typer.Option(
            "--allow-private-networks",
            envvar="VERIHOOK_ALLOW_PRIVATE_NETWORKS",
            help="Let deliveries reach loopback and private addresses, and plain http "
            "(development and tests only).",
        ),
    ] = False,
    metrics_port: Annotated[
        int | None,
        typer.Option("--metrics-port", min=1, max=65535, help="Serve Prometheus metrics here."),
    ] = None,
    metrics_host: Annotated[
        str, typer.Option("--metrics-host", help="Address the metrics server binds.")
    ] = "127.0.0.1",
    timeout: Annotated[
        float, typer.Option("--timeout", min=0.1, max=3600, help="Seconds per attempt.")
    ] = 15.0,
    grace: Annotated[
        float,
        typer.Option("--grace", min=0, max=3600, help="Seconds in-flight attempts get at stop."),
    ] = 10.0,
    log_level: Annotated[
        str, typer.Option("--log-level", help="debug, info, warning or error.")
    ] = "info",
    db: DatabaseOption = DEFAULT_DATABASE_URL,
) -> None:
    """Deliver queued webhooks: claim, POST, record, retry. Stops cleanly on SIGTERM.

    Example: verihook worker --concurrency 64 --metrics-port 9464
    """
    level = logging.getLevelName(log_level.upper())
    if not isinstance(level, int):
        fail("--log-level must be debug, info, warning or error")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    for name in ("verihook.delivery", "verihook.store"):
        logger = logging.getLogger(name)
        logger.addHandler(handler)
        logger.setLevel(level)
        logger.propagate = False
    metrics = WorkerMetrics() if metrics_port is not None else None
    running = Worker(
        db,
        concurrency=concurrency,
        allow_private_networks=allow_private_networks,
        timeout=timeout,
        grace=grace,
        metrics=metrics,
    )
    if metrics is not None and metrics_port is not None:
        try:
            metrics.serve(metrics_port, metrics_host)
        except OSError as exc:
            fail(f"cannot serve metrics on {metrics_host}:{metrics_port}: {exc.strerror}")
    tune_gc_for_serving()
    _run_loop(running.run(drain=drain))


def _run_loop(main: Coroutine[Any, Any, None]) -> None:
    # uvloop where it exists. asyncio's own loop reads each response into a fresh 256 KiB
    # buffer and shrinks it, which glibc serves with an mmap, an mremap and a munmap per read
    # (strace: one of each per request); uvloop reads into a buffer it keeps. Measured in
    # fresh processes (benchmarks/RESULTS.md): the bare sender +25%, the worker +7%.
    try:
        import uvloop
    except ImportError:  # Windows: asyncio's own loop
        asyncio.run(main)
    else:
        uvloop.run(main)
