"""Delivery throughput and latency (issue 4 Figures). Run by hand, never in the test suite:

    python benchmarks/delivery.py --events 20000 --worker-core 0 --server-core 1

(a) deliveries/s end to end, one worker on SQLite; (b) the same on PostgreSQL with one and two
workers; (c) the ceiling: the same sender (aiohttp, same encryption and signature per request)
in a bare loop with the same concurrency, no queue, no storage. Then event-to-delivery latency
p50/p99 on PostgreSQL (LISTEN/NOTIFY) with events committed at half of (b1)'s rate.

Workers are real ``verihook worker`` processes pinned to ``--worker-core``; the receiver is a
bare uvicorn app pinned to ``--server-core``. A backlog of events is committed first; the
rate is deliveries / (last 2xx recorded - first attempt started), read from the database, so
process start-up is not counted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from http_clients import free_port, start_server

from verihook.delivery.address_policy import AddressPolicy
from verihook.delivery.sender import OutgoingRequest, Sender
from verihook.format import SigningSecret, WebhookSecret
from verihook.provider import SyncProvider
from verihook.store import open_database

PG_SERVER = os.environ.get(
    "VERIHOOK_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
PAYLOAD = (
    b'{"event":"VERIFICATION_COMPLETED","key":"b76e244e-26a3-49ef-9c72-3e599bf0b5f2",'
    b'"status":"pending","created":1582628711,"updated":1582628999,"processed":1582628999}'
)


def pg_schema_url() -> tuple[str, str]:
    import psycopg

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_SERVER, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    return f"{PG_SERVER}?options=-csearch_path%3D{schema}", schema


def drop_schema(schema: str) -> None:
    import psycopg

    with psycopg.connect(PG_SERVER, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def fill(db: str, url: str, events: int) -> None:
    """One encrypted endpoint and ``events`` committed events (each one delivery)."""
    with SyncProvider(db, allow_private_networks=True) as provider:
        provider.add_endpoint(url, max_in_flight=256)
        keys = [str(uuid.uuid4()) for _ in range(events)]
        database = open_database(db)
        now = int(time.time())
        # Verifications in bulk (setup, not measured); the events go through the outbox.
        with database.connection() as conn, conn.transaction():
            conn.executemany(
                "INSERT INTO verihook_verifications (key, status, created, updated)"
                " VALUES (?, 'pending', ?, ?)",
                [(k, now, now) for k in keys],
            )
        for key in keys:
            provider.complete(key, 0.5)


def worker_cmd(db: str, core: int | None, concurrency: int, drain: bool) -> list[str]:
    cmd = [sys.executable, "-m", "verihook.cli", "worker", "--allow-private-networks",
           "--concurrency", str(concurrency), "--log-level", "warning", "--db", db]  # fmt: skip
    if drain:
        cmd.append("--drain")
    return ["taskset", "-c", str(core), *cmd] if core is not None else cmd


def rate_from_db(db: str) -> tuple[float, int]:
    with open_database(db).connection() as conn:
        start = conn.scalar("SELECT MIN(started_at) FROM verihook_attempts")
        end, done = conn.one(
            "SELECT MAX(completed_at), COUNT(*) FROM verihook_deliveries WHERE state = 'succeeded'"
        ) or (None, 0)
    return done / (end - start), int(done)


def run_workers(db: str, n: int, core: int | None, concurrency: int) -> tuple[float, int]:
    procs = [subprocess.Popen(worker_cmd(db, core, concurrency, True)) for _ in range(n)]
    for p in procs:
        if p.wait(600) != 0:
            raise SystemExit("worker failed")
    return rate_from_db(db)


async def ceiling(url: str, total: int, concurrency: int) -> float:
    secret, signing = WebhookSecret.generate().reveal(), SigningSecret.generate().reveal()
    async with Sender(AddressPolicy(allow_private=True)) as sender:
        next_i = 0

        async def lane() -> None:
            nonlocal next_i
            while next_i < total:
                next_i += 1
                req = OutgoingRequest(f"msg_{next_i}", url, PAYLOAD, 1, secret, (signing,))
                result = await sender.send(req)
                assert result.status_code == 200

        await asyncio.gather(*(lane() for _ in range(concurrency)))  # warm-up
        next_i = 0
        started = time.perf_counter()
        await asyncio.gather(*(lane() for _ in range(concurrency)))
        return total / (time.perf_counter() - started)


def latency(
    db: str, url: str, rate: float, seconds: float, core: int | None, conc: int
) -> tuple[float, float, float]:
    with SyncProvider(db, allow_private_networks=True) as provider:
        provider.add_endpoint(url, max_in_flight=256)
        n = int(rate * seconds)
        keys = [str(uuid.uuid4()) for _ in range(n)]
        now = int(time.time())
        with open_database(db).connection() as conn, conn.transaction():
            conn.executemany(
                "INSERT INTO verihook_verifications (key, status, created, updated)"
                " VALUES (?, 'pending', ?, ?)",
                [(k, now, now) for k in keys],
            )
        worker = subprocess.Popen(worker_cmd(db, core, conc, False))
        try:
            time.sleep(2.0)  # worker up and listening
            # Several producer threads, each pacing its share: one thread's commits alone
            # cannot reach the target rate.
            from concurrent.futures import ThreadPoolExecutor

            threads = 8
            started = time.perf_counter()

            def produce(offset: int) -> None:
                for i in range(offset, n, threads):
                    delay = started + i / rate - time.perf_counter()
                    if delay > 0:
                        time.sleep(delay)
                    provider.complete(keys[i], 0.5)

            with ThreadPoolExecutor(threads) as pool:
                list(pool.map(produce, range(threads)))
            achieved = n / (time.perf_counter() - started)
            deadline = time.monotonic() + 60
            database = open_database(db)
            while time.monotonic() < deadline:
                with database.connection() as conn:
                    left = conn.scalar(
                        "SELECT COUNT(*) FROM verihook_deliveries WHERE state <> 'succeeded'"
                    )
                if left == 0:
                    break
                time.sleep(0.1)
        finally:
            worker.terminate()
            worker.wait(30)
        with database.connection() as conn:
            lat = sorted(
                float(r[0])
                for r in conn.execute(
                    "SELECT d.completed_at - e.created_at FROM verihook_deliveries d"
                    " JOIN verihook_events e ON e.id = d.event_id WHERE d.state = 'succeeded'"
                )
            )
    return achieved, lat[len(lat) // 2] * 1000, lat[int(len(lat) * 0.99)] * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--worker-core", type=int, default=None)
    parser.add_argument("--server-core", type=int, default=None)
    parser.add_argument("--latency-seconds", type=float, default=8.0)
    args = parser.parse_args()
    if args.worker_core is not None:
        os.sched_setaffinity(0, {args.worker_core})
    with tempfile.TemporaryDirectory() as workdir:
        port = free_port()
        server = start_server(port, args.server_core, workdir)
        url = f"http://127.0.0.1:{port}/webhooks"
        results: dict[str, float] = {}
        try:
            results["c"] = asyncio.run(ceiling(url, args.events, args.concurrency))
            print(f"(c) ceiling, bare sender loop: {results['c']:.0f}/s", flush=True)

            sqlite = f"sqlite:///{workdir}/bench.db"
            fill(sqlite, url, args.events)
            results["a"], done = run_workers(sqlite, 1, args.worker_core, args.concurrency)
            print(f"(a) SQLite, 1 worker: {results['a']:.0f}/s ({done} delivered)", flush=True)

            for n in (1, 2):
                db, schema = pg_schema_url()
                try:
                    fill(db, url, args.events)
                    rate, done = run_workers(db, n, args.worker_core, args.concurrency)
                finally:
                    drop_schema(schema)
                results[f"b{n}"] = rate
                print(f"(b) PostgreSQL, {n} worker(s): {rate:.0f}/s ({done} delivered)", flush=True)

            db, schema = pg_schema_url()
            try:
                achieved, p50, p99 = latency(
                    db, url, results["b1"] / 2, args.latency_seconds, args.worker_core,
                    args.concurrency,
                )  # fmt: skip
            finally:
                drop_schema(schema)
        finally:
            server.terminate()
            server.wait(10)
    print()
    print(f"(a)/(c) = {results['a'] / results['c']:.2f}")
    print(
        f"(b1)/(c) = {results['b1'] / results['c']:.2f}",
        f"(b2)/(c) = {results['b2'] / results['c']:.2f}",
    )
    print(
        f"latency at {achieved:.0f} events/s (target {results['b1'] / 2:.0f}):",
        f"p50 {p50:.1f} ms, p99 {p99:.1f} ms",
    )


if __name__ == "__main__":
    main()
