"""Delivery throughput and latency (issue 4 Figures). Run by hand, never in the test suite:

    python benchmarks/delivery.py --events 10000 --rounds 3 --worker-core 0 --server-core 1

(a) deliveries/s end to end, one worker on SQLite; (b) the same on PostgreSQL with one and two
workers; (c) the ceiling: the same sender (aiohttp on uvloop, as the worker runs; the same
encryption and signature per request) in a bare loop with the same concurrency, no queue, no
storage. Each round measures (c), (a), (c), (b1), (b2), (c), and each ratio is taken against
the mean of the two ceilings around its run: on a shared 2-core machine the absolute figures
swing with the neighbours, and drift. Then event-to-delivery latency p50/p99 on PostgreSQL
(LISTEN/NOTIFY) with events committed at half of the best (b1) measured.

Workers are real ``verihook worker`` processes pinned to ``--worker-core``; the receiver is a
bare uvicorn app pinned to ``--server-core``. A backlog of events is committed first; the
rate is deliveries / (last 2xx recorded - first attempt started), read from the database, so
process start-up is not counted. For the latency run the events come from ``--producers``
processes pinned to ``--producer-core`` (default: the server's core, lightly loaded at half
rate), each committing its share through the real provider and outbox code, paced against
the clock: every event as soon as it is due (at most one transaction a millisecond, holding
what fell due meanwhile, with one outbox write and one NOTIFY), so the worker sees the
trickle of small commits a live provider makes. The steady-state rate (10th to 90th
percentile of the 2xx records) is printed beside the full-window one.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import orjson

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


def fill(db: str, url: str, events: int, *, auto_migrate: bool = True) -> None:
    """One encrypted endpoint and ``events`` committed events (each one delivery).

    ``auto_migrate=False`` leaves a schema the caller migrated as it is."""
    with SyncProvider(db, allow_private_networks=True, auto_migrate=auto_migrate) as provider:
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


def steady_rate_from_db(db: str) -> float:
    """Deliveries/s between the 10th and the 90th percentile of their 2xx records.

    The ceiling is timed after a warm-up pass; a new worker's first claims open the
    connections and fill the caches. This window leaves that ramp (and the drain's last
    stragglers) out of the worker's figure too, so both are steady-state rates.
    """
    with open_database(db).connection() as conn:
        done = sorted(
            float(r[0])
            for r in conn.execute(
                "SELECT completed_at FROM verihook_deliveries WHERE state = 'succeeded'"
            )
        )
    low, high = len(done) // 10, len(done) * 9 // 10
    return (high - low) / (done[high] - done[low])


def run_workers(db: str, n: int, core: int | None, concurrency: int) -> tuple[float, int]:
    procs = [subprocess.Popen(worker_cmd(db, core, concurrency, True)) for _ in range(n)]
    for p in procs:
        if p.wait(600) != 0:
            raise SystemExit("worker failed")
    return rate_from_db(db)


def run_ceiling(url: str, total: int, concurrency: int) -> float:
    """(c) on the worker's own event loop (uvloop, as `verihook worker` runs): the same client."""
    import uvloop

    return uvloop.run(ceiling(url, total, concurrency))


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


def produce(db: str, keys_file: str, rate: float, start_at: float, min_gap: float = 0.001) -> None:
    """Complete ``keys`` at ``rate``/s from ``start_at`` on: each commit takes what is due.

    The provider's own steps (load for update, transition, update, enqueue with its NOTIFY),
    several verifications per transaction and one outbox write for them, so that the load
    generator takes as little of the 2 cores as the real code allows.
    """
    from verihook.provider import store
    from verihook.provider.outbox import enqueue
    from verihook.provider.verifications import complete

    keys = orjson.loads(Path(keys_file).read_bytes())
    database = open_database(db)
    conn = database.connect()
    thresholds = store.load_thresholds(conn)
    sent = 0
    while sent < len(keys):
        due = min(len(keys), int((time.time() - start_at) * rate) + 1)
        if due > sent:
            with conn.transaction():
                now = time.time()
                events = []
                for key in keys[sent:due]:
                    current = store.load_verification(conn, key, for_update=True)
                    transition = complete(current, 0.5, thresholds, now)
                    store.update_verification(conn, transition.verification)
                    events.extend(transition.events)
                # One outbox write per commit, as a provider completing a batch would do: the
                # load generator's own CPU competes with the worker on 2 cores.
                enqueue(conn, events, now)
            sent = due
        time.sleep(max(0.0, start_at + sent / rate - time.time(), min_gap))
    conn.close()


def _cpu_since(before: resource.struct_rusage) -> float:
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def latency(
    db: str, url: str, rate: float, seconds: float, args: argparse.Namespace, cpu: dict[str, float]
) -> tuple[float, float, float, int]:
    """p50/p99 event-to-delivery latency; fills ``cpu`` with CPU us per event (worker with
    its start-up, and the producers)."""
    with SyncProvider(db, allow_private_networks=True) as provider:
        provider.add_endpoint(url, max_in_flight=256)
        n = int(rate * seconds)
        keys = [str(uuid.uuid4()) for _ in range(n)]
        now = int(time.time())
        database = open_database(db)
        with database.connection() as conn, conn.transaction():
            conn.executemany(
                "INSERT INTO verihook_verifications (key, status, created, updated)"
                " VALUES (?, 'pending', ?, ?)",
                [(k, now, now) for k in keys],
            )
    worker = subprocess.Popen(worker_cmd(db, args.worker_core, args.concurrency, False))
    producers: list[subprocess.Popen[bytes]] = []
    try:
        time.sleep(2.0)  # worker up and listening
        start_at = time.time() + 3.0  # the producers are up (imports done) by then
        core = args.producer_core if args.producer_core is not None else args.server_core
        for i in range(args.producers):
            share = keys[i :: args.producers]
            code = (
                "import sys; sys.path.insert(0, sys.argv[1]); import delivery;"
                " delivery.produce(sys.argv[2], sys.argv[3], float(sys.argv[4]),"
                " float(sys.argv[5]))"
            )
            here = str(Path(__file__).parent)
            keys_file = Path(args.workdir) / f"producer{i}.json"
            keys_file.write_bytes(orjson.dumps(share))
            cmd = [sys.executable, "-c", code, here, db, str(keys_file),
                   str(rate / args.producers), str(start_at)]  # fmt: skip
            if core is not None:
                cmd = ["taskset", "-c", str(core), *cmd]
            producers.append(subprocess.Popen(cmd))
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        for p in producers:
            if p.wait(seconds * 4 + 60) != 0:
                raise SystemExit("producer failed")
        cpu["producers"] = _cpu_since(children) / n * 1e6
        achieved = n / (time.time() - start_at)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with database.connection() as conn:
                left = conn.scalar(
                    "SELECT COUNT(*) FROM verihook_deliveries WHERE state <> 'succeeded'"
                )
            if left == 0:
                break
            time.sleep(0.1)
    finally:
        for p in producers:
            if p.poll() is None:
                p.kill()
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        worker.terminate()
        worker.wait(30)
        cpu["worker"] = _cpu_since(children) / n * 1e6
    with database.connection() as conn:
        lat = sorted(
            float(r[0])
            for r in conn.execute(
                "SELECT d.completed_at - e.created_at FROM verihook_deliveries d"
                " JOIN verihook_events e ON e.id = d.event_id WHERE d.state = 'succeeded'"
            )
        )
    return achieved, lat[len(lat) // 2] * 1000, lat[int(len(lat) * 0.99)] * 1000, len(lat)


def spread(values: list[float]) -> str:
    ordered = sorted(values)
    return f"median {ordered[len(ordered) // 2]:.2f} (min {ordered[0]:.2f}, max {ordered[-1]:.2f})"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=10000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--worker-core", type=int, default=None)
    parser.add_argument("--server-core", type=int, default=None)
    parser.add_argument("--producer-core", type=int, default=None)
    parser.add_argument("--producers", type=int, default=2)
    parser.add_argument("--latency-seconds", type=float, default=8.0)
    parser.add_argument("--skip-throughput-rate", type=float, default=None,
                        help="skip (a)-(c) and run the latency part at this rate")  # fmt: skip
    args = parser.parse_args()
    args.workdir = None
    if args.worker_core is not None:
        os.sched_setaffinity(0, {args.worker_core})
    with tempfile.TemporaryDirectory() as workdir:
        args.workdir = workdir
        port = free_port()
        server = start_server(port, args.server_core, workdir)
        url = f"http://127.0.0.1:{port}/webhooks"
        ratios: dict[str, list[float]] = {"a": [], "b1": [], "b2": []}
        steady: dict[str, list[float]] = {"a": [], "b1": [], "b2": []}
        b1: list[float] = []
        cpu: dict[str, float] = {}
        try:
            for round_ in range(args.rounds if args.skip_throughput_rate is None else 0):
                # Each worker run sits between two ceiling runs and is compared with their
                # mean: the machine drifts (the ceiling alone moved 4,900 -> 6,900/s within
                # a minute here), and a ceiling taken on one side only carries the drift.
                sqlite = f"sqlite:///{workdir}/bench{round_}.db"
                fill(sqlite, url, args.events)
                c0 = run_ceiling(url, args.events, args.concurrency)
                a, _ = run_workers(sqlite, 1, args.worker_core, args.concurrency)
                c1 = run_ceiling(url, args.events, args.concurrency)
                c_a = (c0 + c1) / 2
                ratios["a"].append(a / c_a)
                steady["a"].append(steady_rate_from_db(sqlite) / c_a)
                pg_rates: dict[int, tuple[float, float]] = {}
                for n in (1, 2):
                    db, schema = pg_schema_url()
                    try:
                        fill(db, url, args.events)
                        rate, _ = run_workers(db, n, args.worker_core, args.concurrency)
                        pg_rates[n] = (rate, steady_rate_from_db(db))
                    finally:
                        drop_schema(schema)
                c2 = run_ceiling(url, args.events, args.concurrency)
                c_b = (c1 + c2) / 2
                for n, (rate, steady_rate) in pg_rates.items():
                    ratios[f"b{n}"].append(rate / c_b)
                    steady[f"b{n}"].append(steady_rate / c_b)
                b1.append(pg_rates[1][0])
                line = [
                    f"round {round_ + 1}: (c) {c0:.0f} / {c1:.0f} / {c2:.0f}/s",
                    f"(a) {a:.0f}/s",
                    f"(b1) {pg_rates[1][0]:.0f}/s",
                    f"(b2) {pg_rates[2][0]:.0f}/s",
                    f"(a)/(c) {ratios['a'][-1]:.2f} (b1)/(c) {ratios['b1'][-1]:.2f}"
                    f" (b2)/(c) {ratios['b2'][-1]:.2f}; steady-state"
                    f" {steady['a'][-1]:.2f} / {steady['b1'][-1]:.2f} / {steady['b2'][-1]:.2f}",
                ]
                print(" | ".join(line), flush=True)
            if b1:
                print(f"(a)/(c): {spread(ratios['a'])}")
                print(f"(b1)/(c): {spread(ratios['b1'])}")
                print(f"(b2)/(c): {spread(ratios['b2'])}")
                for name in ("a", "b1", "b2"):
                    print(f"steady-state ({name})/(c): {spread(steady[name])}")
            target = args.skip_throughput_rate or max(b1) / 2
            db, schema = pg_schema_url()
            try:
                achieved, p50, p99, count = latency(
                    db, url, target, args.latency_seconds, args, cpu
                )
            finally:
                drop_schema(schema)
        finally:
            server.terminate()
            server.wait(10)
    print(
        f"latency at {achieved:.0f} events/s (target {target:.0f}, {count} events):",
        f"p50 {p50:.1f} ms, p99 {p99:.1f} ms;",
        f"CPU us per event: worker {cpu['worker']:.0f}, producers {cpu['producers']:.0f}",
    )


if __name__ == "__main__":
    main()
