"""Client CPU of a completion on PostgreSQL: load for update, transition, update, outbox.

    taskset -c 0 python benchmarks/outbox_cost.py 3000 4 /tmp/before/src src

Run by hand. For each source tree in turn (alternating the order each round, ROUNDS=3 by
default), a fresh schema with one endpoint and N created verifications, then every one
completed through the provider's own steps, PER_TX to a transaction, as delivery.py's
producers do; prints this process's CPU and the wall time per completion. Each tree runs in a
subprocess with its src on PYTHONPATH.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

HERE = Path(__file__).parent


def measure(completions: int, per_transaction: int) -> tuple[float, float]:
    sys.path.insert(0, str(HERE))
    import delivery as d

    from verihook.provider import SyncProvider, store
    from verihook.provider.outbox import enqueue
    from verihook.provider.verifications import complete
    from verihook.store import open_database

    db, schema = d.pg_schema_url()
    try:
        with SyncProvider(db, allow_private_networks=True) as provider:
            provider.add_endpoint("http://127.0.0.1:9/webhooks", max_in_flight=256)
        keys = [str(uuid.uuid4()) for _ in range(completions)]
        database = open_database(db)
        with database.connection() as conn, conn.transaction():
            conn.executemany(
                "INSERT INTO verihook_verifications (key, status, created, updated)"
                " VALUES (?, 'pending', 1, 1)",
                [(k,) for k in keys],
            )
        conn = database.connect()
        thresholds = store.load_thresholds(conn)
        cpu, wall = time.process_time(), time.perf_counter()
        for start in range(0, completions, per_transaction):
            with conn.transaction():
                now = time.time()
                for key in keys[start : start + per_transaction]:
                    current = store.load_verification(conn, key, for_update=True)
                    transition = complete(current, 0.5, thresholds, now)
                    store.update_verification(conn, transition.verification)
                    enqueue(conn, transition.events, now)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        conn.close()
    finally:
        d.drop_schema(schema)
    return cpu / completions * 1e6, wall / completions * 1e6


def main() -> None:
    if sys.argv[1] == "--one":
        cpu, wall = measure(int(sys.argv[2]), int(sys.argv[3]))
        print(f"{cpu:.0f} {wall:.0f}")
        return
    completions, per_transaction, trees = sys.argv[1], sys.argv[2], sys.argv[3:]
    for r in range(int(os.environ.get("ROUNDS", "3"))):
        for tree in trees if r % 2 == 0 else trees[::-1]:
            env = {**os.environ, "PYTHONPATH": str(Path(tree).resolve())}
            out = subprocess.run(
                [sys.executable, __file__, "--one", completions, per_transaction],
                env=env, check=True, capture_output=True, text=True,
            ).stdout.split()  # fmt: skip
            print(f"round {r + 1} {tree}: client CPU {out[0]} us, wall {out[1]} us per completion")


if __name__ == "__main__":
    main()
