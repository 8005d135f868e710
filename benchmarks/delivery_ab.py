"""Two versions of the worker on the same backlog, interleaved: is a change to it faster?

    git archive <commit> src | tar -x -C /tmp/before
    taskset -c 0 python benchmarks/delivery_ab.py 5 8000 /tmp/before/src src

Run by hand. The full benchmark (delivery.py) swings by +-30% from round to round on a shared
2-core machine; here each round measures (c) the bare sender ceiling, then (a) one SQLite
worker from each source tree (alternating which goes first), then (c) again, so both versions
see the same neighbours. Prints each version's (a)/(c) against the mean of the two ceilings,
and the worker process's CPU per delivery (user + sys, start-up included: ~0.4 s, ~45 us per
delivery at 8000) next to the ceiling's client CPU per request. Server on core 1, all else on 0.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import delivery as d


def main() -> None:
    rounds, events, trees = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
    os.sched_setaffinity(0, {0})
    ratios: dict[str, list[float]] = {t: [] for t in trees}
    cpu: dict[str, list[float]] = {t: [] for t in trees}
    steady_ratios: dict[str, list[float]] = {t: [] for t in trees}
    with tempfile.TemporaryDirectory() as workdir:
        port = d.free_port()
        server = d.start_server(port, 1, workdir)
        url = f"http://127.0.0.1:{port}/webhooks"
        try:
            for r in range(rounds):
                p0 = time.process_time()
                c1 = d.run_ceiling(url, events, 64)
                ceiling_cpu = (time.process_time() - p0) / (2 * events) * 1e6  # with warm-up
                got, steady = {}, {}
                for i, tree in enumerate(trees if r % 2 == 0 else trees[::-1]):
                    db = f"sqlite:///{workdir}/ab{r}_{i}.db"
                    os.environ["PYTHONPATH"] = str(Path(tree).resolve())
                    fill_with_tree(db, url, events)
                    before = resource.getrusage(resource.RUSAGE_CHILDREN)
                    got[tree], done = d.run_workers(db, 1, 0, 64)
                    steady[tree] = d.steady_rate_from_db(db)
                    after = resource.getrusage(resource.RUSAGE_CHILDREN)
                    del os.environ["PYTHONPATH"]
                    used = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
                    cpu[tree].append(used / done * 1e6)
                c2 = d.run_ceiling(url, events, 64)
                c = (c1 + c2) / 2
                line = [f"round {r + 1}: (c) {c1:.0f}/s"]
                for tree in trees:
                    ratios[tree].append(got[tree] / c)
                    steady_ratios[tree].append(steady[tree] / c)
                    line.append(
                        f"{tree}: (a) {got[tree]:.0f}/s ({got[tree] / c:.2f};"
                        f" steady {steady[tree]:.0f}/s, {steady[tree] / c:.2f})"
                    )
                line.append(f"(c) {c2:.0f}/s")
                cpus = " ".join(f"{cpu[t][-1]:.0f}" for t in trees)
                line.append(f"CPU us per delivery: (c) {ceiling_cpu:.0f}, (a) {cpus}")
                print(" | ".join(line), flush=True)
        finally:
            server.terminate()
            server.wait(10)
    for tree in trees:
        print(f"{tree}: (a)/(c) {d.spread(ratios[tree])}; CPU us/delivery {d.spread(cpu[tree])}")
        print(f"{tree}: steady (a)/(c) {d.spread(steady_ratios[tree])}")


def fill_with_tree(db: str, url: str, events: int) -> None:
    # The backlog is written by the tree under test (its ids, its outbox), not by ours.
    code = "import sys; sys.path.insert(0, sys.argv[1]); import delivery;"
    code += " delivery.fill(sys.argv[2], sys.argv[3], int(sys.argv[4]))"
    here = str(Path(__file__).parent)
    subprocess.run([sys.executable, "-c", code, here, db, url, str(events)], check=True)


if __name__ == "__main__":
    main()
