"""Worker versions draining one PostgreSQL backlog, interleaved, with PostgreSQL's own CPU.

    git archive <commit> src | tar -x -C /tmp/before
    ROUNDS=4 taskset -c 0 python benchmarks/delivery_pg_ab.py 8000 /tmp/before/src src

Run by hand. The PostgreSQL twin of delivery_ab.py: each round fills a fresh schema with each
tree's own provider code (its ids, its outbox), drains it with one ``verihook worker`` from
that tree on core 0 (receiver on core 1), alternating which tree goes first, and prints the
drain rate (full window and 10th-90th percentile), the worker's CPU per delivery (user + sys,
start-up included) and the CPU all ``postgres`` processes used meanwhile, per delivery. The
server's CPU matters here: its backends run unpinned on both cores, so what it spends on a
claim or a record is taken from the worker's core half of the time.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import delivery as d


def postgres_cpu_seconds() -> float:
    """User + sys CPU of every process named postgres*, their reaped children included."""
    ticks = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        if comm.startswith("postgres"):
            ticks += sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def fill_with_tree(db: str, url: str, events: int) -> None:
    code = "import sys; sys.path.insert(0, sys.argv[1]); import delivery;"
    code += " delivery.fill(sys.argv[2], sys.argv[3], int(sys.argv[4]))"
    here = str(Path(__file__).parent)
    subprocess.run([sys.executable, "-c", code, here, db, url, str(events)], check=True)


def main() -> None:
    events, trees = int(sys.argv[1]), sys.argv[2:]
    rounds = int(os.environ.get("ROUNDS", "2"))
    os.sched_setaffinity(0, {0})
    with tempfile.TemporaryDirectory() as workdir:
        port = d.free_port()
        server = d.start_server(port, 1, workdir)
        url = f"http://127.0.0.1:{port}/webhooks"
        try:
            for r in range(rounds):
                for tree in trees if r % 2 == 0 else trees[::-1]:
                    db, schema = d.pg_schema_url()
                    os.environ["PYTHONPATH"] = str(Path(tree).resolve())
                    try:
                        fill_with_tree(db, url, events)
                        before = resource.getrusage(resource.RUSAGE_CHILDREN)
                        pg_before = postgres_cpu_seconds()
                        rate, done = d.run_workers(db, 1, 0, 64)
                        after = resource.getrusage(resource.RUSAGE_CHILDREN)
                        pg = (postgres_cpu_seconds() - pg_before) / done * 1e6
                        steady = d.steady_rate_from_db(db)
                    finally:
                        del os.environ["PYTHONPATH"]
                        d.drop_schema(schema)
                    worker = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
                    print(
                        f"round {r + 1} {tree}: {rate:.0f}/s (steady {steady:.0f}/s),"
                        f" worker {worker / done * 1e6:.0f} us/delivery, postgres {pg:.0f}"
                        " us/delivery",
                        flush=True,
                    )
        finally:
            server.terminate()
            server.wait(10)


if __name__ == "__main__":
    main()
