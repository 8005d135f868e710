"""Receiver figures (issue 3): durable ``verihook receive`` against the ceiling and two Node peers.

One invocation measures, under the same load, one after the other:
  (a) ``verihook receive`` storing every event durably in a fresh SQLite file,
  (b) the ceiling: uvicorn (uvloop, httptools, one worker, no access log) answering 200 to a
      raw ASGI app that only reads the body (benchmarks/ceiling_app.py),
  (c) an Express server doing the Passbase guide's decryption (benchmarks/peers/),
  (d) a bare Node ``http`` server doing the same.
The load is wrk (benchmarks/receiver_load.lua): one thread pinned to one core, the server pinned
to another, N connections, a warm-up then a measured run, each request a distinct encrypted event.
After (a) the events in the SQLite file are counted against the 200s wrk saw.

With --postgres, (a) stores into a fresh schema of a PostgreSQL server
($VERIHOOK_TEST_POSTGRES_URL, else postgresql://postgres@127.0.0.1:5432/test), dropped after its
check. The PostgreSQL server is not pinned: its backends run on both cores, wrk's included, so
that row's CPU per request counts only the receiver process, not the database's work.

    python benchmarks/receiver.py [--duration 10] [--connections 64] [--only a,b,c,d] [--postgres]

Run by hand, never by the test suite. Every server it starts it stops, Ctrl-C included.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import platform
import shlex
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from verihook.format import EventType, Status, WebhookEvent, WebhookSecret, encrypt

HERE = Path(__file__).resolve().parent
PEERS = HERE / "peers"
LOAD_SCRIPT = HERE / "receiver_load.lua"
HOST = "127.0.0.1"
# The peers store nothing, so they cycle through this many bodies. (a) deduplicates, so it gets
# bodies that never repeat within its run: enough for 1.25 x the fastest rate measured before it
# in the same invocation (it runs last), else for DEFAULT_RATE (above any durable rate seen here).
PEER_BODIES = 10_000
DEFAULT_RATE = 40_000
INBOX_EVENTS_TABLE = "verihook_inbox_events"
PG_SERVER = os.environ.get(
    "VERIHOOK_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
READY_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0


@dataclass(frozen=True)
class Contender:
    name: str
    title: str


CONTENDERS = {
    "a": Contender("a", "verihook receive, durable (SQLite)"),
    "b": Contender("b", "ceiling: uvicorn + raw ASGI, 200"),
    "c": Contender("c", "Node Express + guide decrypt"),
    "d": Contender("d", "Node http + guide decrypt"),
}
POSTGRES_RECEIVER = Contender("a", "verihook receive, durable (PostgreSQL)")


def contender_of(name: str, args: argparse.Namespace) -> Contender:
    return POSTGRES_RECEIVER if name == "a" and args.postgres else CONTENDERS[name]


class Skip(Exception):
    """A contender that cannot run here; the others still do."""


class BenchmarkFailed(Exception):
    """A contender that started but did not behave; the run stops with this reason."""


@dataclass
class LoadResult:
    duration_s: float
    requests: int
    sent: int
    bodies: int
    errors: int
    non_2xx: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float

    @property
    def rate(self) -> float:
        return self.requests / self.duration_s if self.duration_s else 0.0

    @property
    def ok(self) -> int:
        # wrk counts a response as a status error when its code is above 399; the servers here
        # never answer 1xx or 3xx, so everything else it completed was a 2xx.
        return self.requests - self.non_2xx


@dataclass
class Outcome:
    contender: Contender
    result: LoadResult | None = None
    warmup: LoadResult | None = None
    skipped: str | None = None
    failed: bool = False
    notes: list[str] = field(default_factory=list)
    # (2xx answered, events stored, requests sent, verdict), for (a) only.
    stored: tuple[int, int, int, str] | None = None
    # CPU seconds the server process (all its threads) used during the measured run.
    cpu_seconds: float | None = None

    @property
    def cpu_us_per_request(self) -> float | None:
        if self.cpu_seconds is None or self.result is None or not self.result.requests:
            return None
        return self.cpu_seconds / self.result.requests * 1e6


# ---------------------------------------------------------------------------------------------
# Bodies


def realistic_events(count: int, start: int) -> Iterator[WebhookEvent]:
    """Distinct events as a provider sends them: for each verification a COMPLETED (pending, or
    auto-decided) then a REVIEWED, so the receiver both inserts and moves reconciled state."""
    produced = 0
    created = start
    while produced < count:
        key = str(uuid.uuid4())
        created += 1
        completed = created + 180 + produced % 97
        reviewed = completed + 600 + produced % 3593
        decision = Status.DECLINED if produced % 5 == 0 else Status.APPROVED
        automated = produced % 3 == 0
        first = decision if automated else Status.PENDING
        yield WebhookEvent(
            EventType.VERIFICATION_COMPLETED, key, first, created, completed, completed
        )
        produced += 1
        if produced < count:
            later = completed if automated else reviewed
            yield WebhookEvent(
                EventType.VERIFICATION_REVIEWED, key, decision, created, later, later
            )
            produced += 1


def write_bodies(path: Path, count: int, secret: WebhookSecret, start: int) -> None:
    with path.open("wb") as out:
        for event in realistic_events(count, start):
            out.write(encrypt(event, secret))
            out.write(b"\n")


# ---------------------------------------------------------------------------------------------
# Processes


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def pinned(cpu: int | None, command: Sequence[str]) -> list[str]:
    return ["taskset", "-c", str(cpu), *command] if cpu is not None else list(command)


class Server:
    """A server subprocess in its own session, its output in a log file, always stopped."""

    def __init__(self, command: Sequence[str], log: Path, env: dict[str, str] | None = None):
        self.log = log
        self._log_file = log.open("wb")
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )

    def wait_ready(self, port: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchmarkFailed(
                    f"server exited with code {self.process.returncode} before listening"
                    f"{self.log_tail()}"
                )
            with contextlib.suppress(OSError), socket.create_connection((HOST, port), 0.5):
                return
            time.sleep(0.05)
        raise BenchmarkFailed(f"server not listening on {HOST}:{port} after {timeout:.0f} s")

    def log_tail(self, lines: int = 8) -> str:
        self._log_file.flush()
        text = self.log.read_text(errors="replace").strip().splitlines()[-lines:]
        return ("; its log ends:\n    " + "\n    ".join(text)) if text else ""

    def stop(self) -> None:
        """SIGTERM and wait (a receiver finishes what it stored), then SIGKILL the session."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                print(f"    server did not stop in {STOP_TIMEOUT:.0f} s: killed", file=sys.stderr)
        # Whatever it started (taskset execs in place, but a server may fork) goes too.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self._log_file.close()


@contextlib.contextmanager
def running(server: Server) -> Iterator[Server]:
    try:
        yield server
    finally:
        server.stop()


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process and all its threads, from /proc (Linux only).

    On a shared machine the neighbours steal the server's core unevenly between contenders;
    the CPU a server spends per request does not depend on them, so it is reported too.
    """
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    # Fields 14 and 15 (utime, stime) of proc(5), counted after the ")" closing the name.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def probe(port: int, body: bytes) -> None:
    """One valid webhook before the load: a server that refuses it would only measure 4xx."""
    connection = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        connection.request("POST", "/webhooks", body, {"Content-Type": "text/plain"})
        response = connection.getresponse()
        text = response.read(200).decode(errors="replace")
    except OSError as exc:
        raise BenchmarkFailed(f"probe request failed: {exc}") from None
    finally:
        connection.close()
    if response.status != 200:
        raise BenchmarkFailed(f"probe answered {response.status} {text!r}, expected 200")


def run_wrk(
    port: int, bodies: Path, duration: float, connections: int, cpu: int | None
) -> LoadResult:
    command = pinned(
        cpu,
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{max(1, round(duration))}s",
            "--timeout",
            "5s",
            "--latency",
            "-s",
            str(LOAD_SCRIPT),
            f"http://{HOST}:{port}/webhooks",
            "--",
            str(bodies),
        ],
    )
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=duration + 60, check=False
        )
    except subprocess.TimeoutExpired:
        raise BenchmarkFailed("wrk did not finish in time") from None
    line = next(
        (x for x in done.stdout.splitlines() if x.startswith("VERIHOOK_RESULT ")),
        None,
    )
    if done.returncode != 0 or line is None:
        reason = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise BenchmarkFailed(f"wrk failed (exit {done.returncode}): {' / '.join(reason)}")
    raw: dict[str, Any] = json.loads(line.removeprefix("VERIHOOK_RESULT "))
    return LoadResult(
        duration_s=raw["duration_us"] / 1e6,
        requests=raw["requests"],
        sent=raw["sent"],
        bodies=raw["bodies"],
        errors=raw["connect_errors"] + raw["read_errors"] + raw["write_errors"] + raw["timeouts"],
        non_2xx=raw["status_errors"],
        p50_ms=raw["p50_us"] / 1000,
        p90_ms=raw["p90_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        max_ms=raw["max_us"] / 1000,
    )


# ---------------------------------------------------------------------------------------------
# Contenders


@dataclass
class Setup:
    workdir: Path
    secret: WebhookSecret
    probe_body: bytes
    peer_bodies: Path
    start: int
    args: argparse.Namespace
    # Each round of (a) gets a fresh database and events of its own.
    round: int = 0
    # The round's PostgreSQL schema, while (a) runs and is checked (--postgres only).
    schema: str | None = None

    @property
    def database(self) -> Path:
        return self.workdir / f"receiver-{self.round}.db"

    @property
    def database_url(self) -> str:
        if self.schema is not None:
            # The receiver creates its tables in the first schema of its search_path.
            return f"{PG_SERVER}?options=-csearch_path%3D{self.schema}"
        return f"sqlite:///{self.database}"


@contextlib.contextmanager
def fresh_store(name: str, setup: Setup) -> Iterator[None]:
    """A fresh PostgreSQL schema for a round of (a) with --postgres, dropped once it is checked,
    whatever happened (the SQLite files go with the work dir)."""
    if name != "a" or not setup.args.postgres:
        yield
        return
    import psycopg

    schema = f"bench_receiver_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_SERVER, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    setup.schema = schema
    try:
        yield
    finally:
        setup.schema = None
        with psycopg.connect(PG_SERVER, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def server_command(name: str, setup: Setup, port: int) -> tuple[list[str], dict[str, str]]:
    secret = setup.secret.reveal()
    if name == "a":
        database = setup.database_url
        if setup.args.receiver_command:
            fields = {"python": sys.executable, "host": HOST, "port": port, "db": database}
            words = shlex.split(setup.args.receiver_command)
            # The secret goes in the environment, never on a command line shown by `ps`.
            return [w.format(**fields) for w in words], {"VERIHOOK_BENCH_SECRET": secret}
        command = [sys.executable, "-m", "verihook.cli", "receive", "--host", HOST]
        return [*command, "--port", str(port), "--secret", secret, "--db", database], {}
    if name == "b":
        return [
            sys.executable,
            "-m",
            "uvicorn",
            "--app-dir",
            str(HERE),
            "ceiling_app:app",
            "--host",
            HOST,
            "--port",
            str(port),
            "--loop",
            "uvloop",
            "--http",
            "httptools",
            "--no-access-log",
            "--lifespan",
            "off",
            "--log-level",
            "warning",
        ], {}
    script = "express_server.js" if name == "c" else "http_server.js"
    env = {"WEBHOOK_SECRET": secret, "NODE_ENV": "production"}
    return ["node", str(PEERS / script), "--host", HOST, "--port", str(port)], env


def check_available(name: str, args: argparse.Namespace) -> None:
    if name == "a" and not args.receiver_command:
        help_run = subprocess.run(
            [sys.executable, "-m", "verihook.cli", "receive", "--help"],
            capture_output=True,
            timeout=60,
            check=False,
        )
        if help_run.returncode != 0:
            raise Skip(
                "`verihook receive` does not exist yet "
                f"(`verihook receive --help` exited {help_run.returncode})"
            )
    if name in ("c", "d"):
        if shutil.which("node") is None:
            raise Skip("node is not on PATH")
        ensure_node_modules()


def ensure_node_modules() -> None:
    if (PEERS / "node_modules" / "express" / "package.json").exists():
        return
    npm = shutil.which("npm")
    if npm is None:
        raise Skip("npm is not on PATH, and benchmarks/peers/node_modules is missing")
    install = "ci" if (PEERS / "package-lock.json").exists() else "install"
    print(f"  npm {install} in {PEERS} ...", flush=True)
    done = subprocess.run(
        [npm, install, "--no-audit", "--no-fund"],
        cwd=PEERS,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode != 0:
        tail = " / ".join(done.stderr.strip().splitlines()[-3:])
        raise Skip(f"npm {install} failed: {tail}")


def count_stored_events(setup: Setup) -> tuple[str, int, int | None]:
    """The events the receiver stored, read from its database once it has stopped, and the
    duplicates it counted (None when the table does not count them)."""
    table = setup.args.events_table
    if setup.schema is not None:
        return count_stored_postgres(setup.schema, table)
    database = setup.database
    if not database.exists():
        raise BenchmarkFailed(f"the receiver left no database at {database}")
    with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as db:
        if table is None:
            names = [
                str(row[0])
                for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            ]
            table = find_events_table(
                names, lambda n: int(db.execute(f'SELECT count(*) FROM "{n}"').fetchone()[0])
            )
        (count,) = db.execute(f'SELECT count(*) FROM "{table}"').fetchone()
        columns = {str(row[1]) for row in db.execute(f'PRAGMA table_info("{table}")')}
        duplicates = None
        if "duplicates" in columns:
            (total,) = db.execute(f'SELECT coalesce(sum(duplicates), 0) FROM "{table}"').fetchone()
            duplicates = int(total)
    return table, int(count), duplicates


def count_stored_postgres(schema: str, table: str | None) -> tuple[str, int, int | None]:
    """The same count, read from the round's PostgreSQL schema with psycopg."""
    import psycopg

    with psycopg.connect(PG_SERVER, autocommit=True) as conn:

        def rows(name: str) -> int:
            found = conn.execute(f'SELECT count(*) FROM "{schema}"."{name}"').fetchone()
            return int(found[0]) if found else 0

        if table is None:
            listed = conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                (schema,),
            )
            table = find_events_table([str(row[0]) for row in listed], rows)
        count = rows(table)
        columns = conn.execute(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_schema = %s AND table_name = %s",
            (schema, table),
        )
        duplicates = None
        if "duplicates" in {str(row[0]) for row in columns}:
            total = conn.execute(
                f'SELECT coalesce(sum(duplicates), 0) FROM "{schema}"."{table}"'
            ).fetchone()
            duplicates = int(total[0]) if total else 0
    return table, count, duplicates


def find_events_table(names: list[str], rows: Callable[[str], int]) -> str:
    """The receiver's inbox (store/inbox_schema.py), else the fullest table named for events."""
    if INBOX_EVENTS_TABLE in names:
        return INBOX_EVENTS_TABLE
    excluded = ("handler", "run", "attempt", "deliver", "migration", "setting", "endpoint")
    candidates = [
        n for n in names if "event" in n.lower() and not any(x in n.lower() for x in excluded)
    ]
    if not candidates:
        raise BenchmarkFailed(
            f"no events table found among {sorted(names)}; name it with --events-table"
        )
    counts = {n: rows(n) for n in candidates}
    return max(candidates, key=counts.__getitem__)


def receiver_bodies(setup: Setup, max_rate: float) -> tuple[Path, Path]:
    """Distinct bodies for (a), the warm-up's distinct from the measured run's."""
    rate = 1.25 * max_rate if max_rate else DEFAULT_RATE
    args = setup.args
    paths = (setup.workdir / "receiver-warmup.txt", setup.workdir / "receiver-measured.txt")
    for path in paths:
        path.unlink(missing_ok=True)
    counts = (max(1_000, int(args.warmup * rate)), max(10_000, int(args.duration * rate)))
    print(f"    encrypting {sum(counts):,} distinct events (for {rate:,.0f} req/s) ...", flush=True)
    for offset, path, count in zip((5_000_000, 0), paths, counts, strict=True):
        write_bodies(path, count, setup.secret, setup.start - setup.round * 50_000_000 - offset)
    return paths


def measure(name: str, setup: Setup, max_rate: float) -> Outcome:
    args = setup.args
    contender = contender_of(name, args)
    outcome = Outcome(contender)
    try:
        check_available(name, args)
    except Skip as skip:
        outcome.skipped = str(skip)
        return outcome
    warmup_bodies = measured_bodies = setup.peer_bodies
    if name == "a":
        warmup_bodies, measured_bodies = receiver_bodies(setup, max_rate)
    port = free_port()
    command, env = server_command(name, setup, port)
    log = setup.workdir / f"server-{name}.log"
    with running(Server(pinned(args.server_cpu, command), log, env)) as server:
        server.wait_ready(port, READY_TIMEOUT)
        probe(port, setup.probe_body)
        if args.warmup > 0:
            outcome.warmup = run_wrk(
                port, warmup_bodies, args.warmup, args.connections, args.load_cpu
            )
        cpu_before = cpu_seconds(server.process.pid)
        result = run_wrk(port, measured_bodies, args.duration, args.connections, args.load_cpu)
        cpu_after = cpu_seconds(server.process.pid)
        if cpu_before is not None and cpu_after is not None:
            outcome.cpu_seconds = cpu_after - cpu_before
        if server.process.poll() is not None:
            raise BenchmarkFailed(f"server died during the run{server.log_tail()}")
    outcome.result = result
    if name == "a" and result.sent > result.bodies:
        outcome.notes.append(
            f"{result.sent} requests for {result.bodies} distinct bodies: events repeated"
        )
    return outcome


# ---------------------------------------------------------------------------------------------
# Report


def median(outcomes: list[Outcome]) -> Outcome:
    """The round with the median rate (the lower one of two), or the skipped outcome."""
    measured = sorted((o for o in outcomes if o.result is not None), key=rate_of)
    return measured[(len(measured) - 1) // 2] if measured else outcomes[0]


def rate_of(outcome: Outcome | None) -> float:
    return outcome.result.rate if outcome is not None and outcome.result is not None else 0.0


def ratio(a: Outcome | None, b: Outcome | None) -> str:
    if not rate_of(a) or not rate_of(b):
        return "n/a"
    return f"{rate_of(a) / rate_of(b):.2f}x"


def efficiency(a: Outcome | None, b: Outcome | None) -> str:
    cost_a = a.cpu_us_per_request if a is not None else None
    cost_b = b.cpu_us_per_request if b is not None else None
    if not cost_a or not cost_b:
        return "n/a"
    return f"{cost_b / cost_a:.2f}x"


def report(rounds: dict[str, list[Outcome]], markdown: bool) -> str:
    header: tuple[str, ...] = (
        "",
        "server",
        "req/s",
        "p50 ms",
        "p99 ms",
        "errors",
        "non-2xx",
        "requests",
        "CPU us/req",
    )
    several = any(len(x) > 1 for x in rounds.values())
    if several:
        header = (*header, "req/s per round")
    rows: list[tuple[str, ...]] = []
    medians = {name: median(outcomes) for name, outcomes in rounds.items()}
    for name, outcome in medians.items():
        r = outcome.result
        if r is None:
            row: tuple[str, ...] = (
                name,
                outcome.contender.title,
                "failed" if outcome.failed else "skipped",
                *[""] * 6,
            )
        else:
            row = (
                name,
                outcome.contender.title,
                f"{r.rate:,.0f}",
                f"{r.p50_ms:.2f}",
                f"{r.p99_ms:.2f}",
                str(r.errors),
                str(r.non_2xx),
                f"{r.requests:,}",
                "?" if outcome.cpu_us_per_request is None else f"{outcome.cpu_us_per_request:.0f}",
            )
        if several:
            row = (*row, " ".join(f"{rate_of(o):,.0f}" for o in rounds[name]))
        rows.append(row)
    lines: list[str] = []
    if markdown:
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "|".join("---" for _ in header) + "|")
        lines.extend("| " + " | ".join(row) + " |" for row in rows)
    else:
        widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
        for row in [header, *rows]:
            cells = [
                c.ljust(w) if i in (1, 9) else c.rjust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            ]
            lines.append("  ".join(cells).rstrip())
    a, b, c, d = (medians.get(x) for x in "abcd")
    lines.append("")
    lines.append(
        f"ratios (req/s{', medians' if several else ''}): (a)/(d) {ratio(a, d)}"
        f"   (a)/(c) {ratio(a, c)}   (a)/(b) {ratio(a, b)}"
        f"   [for reference: (b)/(d) {ratio(b, d)}   (d)/(c) {ratio(d, c)}]"
    )
    lines.append(
        "ratios (requests per CPU-second, less sensitive to neighbours):"
        f" (a)/(d) {efficiency(a, d)}   (a)/(c) {efficiency(a, c)}   (a)/(b) {efficiency(a, b)}"
    )
    for name, outcomes in rounds.items():
        if outcomes[0].skipped:
            label = "failed" if outcomes[0].failed else "skipped"
            lines.append(f"({name}) {label}: {outcomes[0].skipped.removeprefix('FAILED: ')}")
        for number, outcome in enumerate(outcomes, 1):
            where = f"({name}) round {number}: " if several else f"({name}) "
            lines.extend(where + note for note in outcome.notes)
    return "\n".join(lines)


def as_json(rounds: dict[str, list[Outcome]]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for name, outcomes in rounds.items():
        data[name] = {
            "title": outcomes[0].contender.title,
            "skipped": outcomes[0].skipped,
            "median_requests_per_second": round(rate_of(median(outcomes)), 1),
            "rounds": [
                {
                    "requests_per_second": round(rate_of(o), 1),
                    "result": asdict(o.result) if o.result else None,
                    "warmup": asdict(o.warmup) if o.warmup else None,
                    "stored_check": o.stored,
                    "cpu_seconds": o.cpu_seconds,
                    "cpu_us_per_request": o.cpu_us_per_request,
                    "notes": o.notes,
                }
                for o in outcomes
            ],
        }
    return data


def postgres_version() -> str:
    """The server (a) stores into; unreachable, the run stops before measuring anything."""
    import psycopg

    try:
        with psycopg.connect(PG_SERVER, autocommit=True, connect_timeout=10) as conn:
            found = conn.execute("SHOW server_version").fetchone()
    except psycopg.Error as exc:
        raise BenchmarkFailed(f"--postgres: cannot reach {PG_SERVER}: {exc}") from None
    # Not pinned: its backends take CPU on either core, which (a)'s figure does not count.
    return f"PostgreSQL {found[0] if found else '?'} at {PG_SERVER} (not pinned)"


def versions() -> str:
    def first_line(command: Sequence[str]) -> str:
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
        except OSError:
            return "missing"
        # wrk --version prints its banner and usage, and exits 1.
        lines = (done.stdout or done.stderr).strip().splitlines()
        return lines[0].split(" Copyright")[0].strip() if lines else "?"

    import uvicorn

    express = PEERS / "node_modules" / "express" / "package.json"
    express_version = json.loads(express.read_text())["version"] if express.exists() else "?"
    # The tree may be shared and live: say which code (a) ran, and whether src/ had edits.
    status = subprocess.run(
        ["git", "-C", str(HERE.parent), "status", "--porcelain", "--", "src"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    dirty = " + uncommitted changes in src/" if status.stdout.strip() else ""
    commit = first_line(["git", "-C", str(HERE.parent), "rev-parse", "--short", "HEAD"])
    return (
        f"verihook at {commit}{dirty}\n"
        f"{platform.node()}: {os.cpu_count()} cpus, Python {platform.python_version()},"
        f" uvicorn {uvicorn.__version__}, node {first_line(['node', '--version'])},"
        f" express {express_version}, {first_line(['wrk', '--version'])}"
    )


# ---------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds (10)")
    parser.add_argument("--warmup", type=float, default=3.0, help="warm-up seconds (3; 0: none)")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections (64)")
    parser.add_argument(
        "--rounds", type=int, default=1, help="repeat the whole comparison; medians reported (1)"
    )
    parser.add_argument("--only", default="a,b,c,d", help="contenders to run, e.g. a,d")
    parser.add_argument("--load-cpu", type=int, default=0, help="core for wrk (0)")
    parser.add_argument("--server-cpu", type=int, default=1, help="core for the server (1)")
    parser.add_argument(
        "--receiver-command",
        help="run (a) with this command instead of `verihook receive`; {python} {host} {port}"
        " {db} are filled in, the secret is in $VERIHOOK_BENCH_SECRET",
    )
    parser.add_argument("--events-table", help="the receiver's events table (auto-detected)")
    parser.add_argument(
        "--postgres",
        action="store_true",
        help="(a) stores into a fresh schema of $VERIHOOK_TEST_POSTGRES_URL"
        " (postgresql://postgres@127.0.0.1:5432/test), not SQLite",
    )
    parser.add_argument("--markdown", action="store_true", help="print the table as markdown")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    parser.add_argument("--keep", action="store_true", help="keep the work dir (db, logs)")
    args = parser.parse_args(argv)
    only = [x.strip() for x in args.only.split(",") if x.strip()]
    unknown = [x for x in only if x not in CONTENDERS]
    if unknown or not only:
        parser.error(f"--only takes letters among a,b,c,d, got {args.only!r}")
    args.only = sorted(set(only))
    if not 0 < args.duration <= 600 or not 0 <= args.warmup <= 120:
        parser.error("--duration must be in (0, 600] and --warmup in [0, 120] seconds")
    if not 1 <= args.rounds <= 20:
        parser.error("--rounds must be between 1 and 20")
    if not 1 <= args.connections <= 10_000:
        parser.error("--connections must be between 1 and 10000")
    cpus = os.sched_getaffinity(0)
    if {args.load_cpu, args.server_cpu} <= cpus and args.load_cpu != args.server_cpu:
        if shutil.which("taskset") is None:
            parser.error("taskset is needed to pin the server and wrk (util-linux)")
    else:
        print(
            f"warning: cores {args.load_cpu} and {args.server_cpu} are not two distinct cores"
            f" of {sorted(cpus)}: nothing pinned",
            file=sys.stderr,
        )
        args.load_cpu = args.server_cpu = None
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        print("error: wrk is not on PATH (apt-get install -y wrk)", file=sys.stderr)
        return 1
    # Ctrl-C and SIGTERM both unwind through the finally blocks that stop the servers.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    workdir = Path(tempfile.mkdtemp(prefix="verihook-bench-"))
    try:
        secret = WebhookSecret.generate()
        start = int(time.time()) - 86_400
        setup = Setup(
            workdir=workdir,
            secret=secret,
            probe_body=encrypt(next(realistic_events(1, start - 10_000_000)), secret),
            peer_bodies=workdir / "peers.txt",
            start=start,
            args=args,
        )
        write_bodies(setup.peer_bodies, PEER_BODIES, secret, start - 20_000_000)
        if {"c", "d"} & set(args.only) and shutil.which("node"):
            # Installed first, so that the versions below name the Express actually run.
            with contextlib.suppress(Skip):
                ensure_node_modules()
        print(versions())
        if args.postgres:
            print(postgres_version())
        print("load average before the run: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
        print(
            f"wrk -t1 -c{args.connections} on core {args.load_cpu}, servers on core"
            f" {args.server_cpu}; {args.warmup:g} s warm-up, {args.duration:g} s measured",
            flush=True,
        )
        # (a) last: its bodies are sized from the others' rates, and its check reads its db.
        # Rounds interleave the contenders, so that a noisy neighbour hits them all alike.
        order = sorted(args.only, key=lambda n: (n == "a", n))
        rounds: dict[str, list[Outcome]] = {name: [] for name in sorted(order)}
        for number in range(args.rounds):
            setup.round = number
            for name in order:
                if rounds[name] and rounds[name][0].skipped:
                    continue
                label = f"round {number + 1}/{args.rounds}: " if args.rounds > 1 else ""
                print(f"{label}({name}) {contender_of(name, args).title} ...", flush=True)
                # (a) on PostgreSQL: a schema of its own, dropped after its stored check.
                with fresh_store(name, setup):
                    rates = [rate_of(o) for x in rounds.values() for o in x]
                    try:
                        outcome = measure(name, setup, max(rates, default=0.0))
                    except BenchmarkFailed as exc:
                        # One broken contender is reported; the others are still measured.
                        outcome = Outcome(
                            contender_of(name, args), skipped=f"FAILED: {exc}", failed=True
                        )
                    rounds[name].append(outcome)
                    if outcome.skipped:
                        print(f"    skipped: {outcome.skipped}", flush=True)
                        continue
                    assert outcome.result is not None
                    r = outcome.result
                    cost = outcome.cpu_us_per_request
                    print(
                        f"    {r.rate:,.0f} req/s, p99 {r.p99_ms:.2f} ms"
                        + (f", {cost:.0f} us of server CPU per request" if cost else ""),
                        flush=True,
                    )
                    if name == "a":
                        verify_stored(outcome, setup)
                        print(f"    {outcome.notes[-1]}", flush=True)
        print()
        print(report(rounds, args.markdown))
        if args.json:
            args.json.write_text(json.dumps(as_json(rounds), indent=2) + "\n")
        if any(o.stored is not None and o.stored[3] != "OK" for o in rounds.get("a", [])):
            print("error: (a) answered 200 for events it did not store", file=sys.stderr)
            return 1
        return 1 if any(o.failed for x in rounds.values() for o in x) else 0
    except BenchmarkFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: servers stopped", file=sys.stderr)
        return 130
    finally:
        if args.keep:
            print(f"work dir kept: {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def verify_stored(outcome: Outcome, setup: Setup) -> None:
    """Every 200 must be a stored event: stored >= the 2xx wrk counted, probe and warm-up included.

    Stored may exceed that by the requests still in flight when wrk stopped (stored, but their
    answers never counted): at most one per connection per wrk run.
    """
    assert outcome.result is not None
    table, stored, duplicates = count_stored_events(setup)
    runs = [r for r in (outcome.warmup, outcome.result) if r is not None]
    answered = 1 + sum(r.ok for r in runs)
    sent = 1 + sum(r.sent for r in runs)
    verdict = "OK" if answered <= stored <= sent else "MISMATCH"
    outcome.stored = (answered, stored, sent, verdict)
    outcome.notes.append(
        f"stored check {verdict}: {stored:,} events in {table}; 2xx answered {answered:,};"
        f" requests sent {sent:,} (probe and warm-up included)"
        + (f"; duplicates seen {duplicates:,}" if duplicates is not None else "")
    )


if __name__ == "__main__":
    sys.exit(main())
