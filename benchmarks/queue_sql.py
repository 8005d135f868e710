"""The SQLite queue's own cost: claim + record per delivery, counted in instructions.

    python benchmarks/queue_sql.py --batch 16

Run by hand (needs valgrind). For each schema, the delivery domain's migrations up to
version 2 (before the third step) and all of them, a database is filled with one endpoint and
2,000, then 4,000 queued events; a subprocess then claims ``--batch`` deliveries and records
them as successes, one transaction each, until none is left, under
``valgrind --tool=callgrind``. Instructions per delivery = the difference of the two drains
/ 2,000, so start-up and imports cancel out. Instruction counts do not depend on what else the
machine is doing (user space only: the kernel's share of a commit is not in them).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import delivery as bench

SIZES = (2000, 4000)


def fill(path: str, events: int, delivery_version: int | None) -> None:
    from verihook.delivery.schema import DELIVERY_MIGRATIONS
    from verihook.store import migrate, open_database
    from verihook.store.provider_schema import PROVIDER_MIGRATIONS

    url = f"sqlite:///{path}"
    delivery = [
        m for m in DELIVERY_MIGRATIONS if delivery_version is None or m.version <= delivery_version
    ]
    migrate(open_database(url), [*PROVIDER_MIGRATIONS, *delivery])
    # The events go through the provider's outbox, on the schema just made.
    bench.fill(url, "http://127.0.0.1:9/hook", events, auto_migrate=False)


def drain(path: str, batch: int) -> None:
    from verihook.delivery.health import CircuitBreaker
    from verihook.delivery.outcome import Decision, Next, Outcome
    from verihook.delivery.queue import AttemptRecord, claim, record
    from verihook.delivery.sender import AttemptResult
    from verihook.store import open_database

    breaker = CircuitBreaker()
    conn = open_database(f"sqlite:///{path}").connect()
    ok = AttemptResult(Outcome.SUCCESS, 1.0, 200, None, "ok")
    while True:
        now = time.time()
        with conn.transaction():
            got = claim(conn, owner="w", now=now, limit=batch, lease_seconds=60, breaker=breaker)
        if not got:
            return
        with conn.transaction():
            record(conn, [AttemptRecord(d, now, ok, Decision(Next.SUCCEEDED)) for d in got],
                   time.time(), breaker)  # fmt: skip


def instructions(events: int, batch: int, delivery_version: int | None) -> int:
    with tempfile.TemporaryDirectory() as workdir:
        path = f"{workdir}/queue.db"
        fill(path, events, delivery_version)
        out = subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={workdir}/cg.out",
             sys.executable, __file__, "--drain", path, "--batch", str(batch)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
    found = re.search(r"Collected : (\d+)", out.stderr)
    assert found is not None, out.stderr[-2000:]
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--drain", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.drain:
        drain(args.drain, args.batch)
        return
    results = {}
    for label, version in (("delivery schema v2", 2), ("current schema", None)):
        small, large = (instructions(n, args.batch, version) for n in SIZES)
        results[label] = (large - small) / (SIZES[1] - SIZES[0])
        print(f"{label}: {results[label]:,.0f} instructions per delivery (batch {args.batch})")
    before, after = results.values()
    print(f"current / v2: {after / before:.3f}")


if __name__ == "__main__":
    main()
