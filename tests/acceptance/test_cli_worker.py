"""``verihook worker`` and ``verihook deliveries`` as an operator runs them: real processes,
real receivers on 127.0.0.1, SQLite and PostgreSQL; workers SIGKILLed mid-load."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "integration" / "delivery"))
from delivery_receivers import TestReceiver

from verihook.provider import SyncProvider
from verihook.store import Database


def env(db: str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("VERIHOOK_")}
    clean["VERIHOOK_DATABASE_URL"] = db
    return clean


def verihook(db: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "verihook.cli", *args],
        capture_output=True,
        text=True,
        env=env(db),
        timeout=120,
        check=False,
    )


def start_worker(db: str, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "verihook.cli", "worker", "--allow-private-networks", *args],
        env=env(db),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def assert_refused(done: subprocess.CompletedProcess[str], reason: str) -> None:
    assert done.returncode == 1, done.stderr
    assert done.stderr.startswith("verihook: error: ") and done.stderr.count("\n") == 1
    assert reason in done.stderr and "Traceback" not in done.stderr


@pytest.fixture
def receiver() -> Iterator[TestReceiver]:
    r = TestReceiver().start()
    yield r
    r.stop()


def test_drain_then_list_show_replay(
    database_url: str, database: Database, receiver: TestReceiver
) -> None:
    provider = SyncProvider(database_url, allow_private_networks=True)
    ok = provider.add_endpoint(receiver.url("/ok")).id
    provider.add_endpoint(receiver.url("/gone"))
    provider.complete(provider.create_verification().key, 0.5)
    done = verihook(database_url, "worker", "--drain", "--allow-private-networks")
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stderr.splitlines()]
    assert sorted(line["outcome"] for line in lines) == ["gone", "success"]
    assert all(line["msg"] == "delivery attempt" for line in lines)
    assert "whsec_" not in done.stderr and "http://" not in done.stderr

    listed = json.loads(verihook(database_url, "deliveries", "list", "--json").stdout)
    assert sorted(d["state"] for d in listed) == ["failed", "succeeded"]
    succeeded = next(d for d in listed if d["state"] == "succeeded")
    shown = json.loads(
        verihook(database_url, "deliveries", "show", succeeded["id"], "--json").stdout
    )
    assert [a["outcome"] for a in shown["attempts"]] == ["success"]
    assert shown["attempts"][0]["response_body"] == "ok"

    replayed = verihook(database_url, "deliveries", "replay", succeeded["id"], "--json")
    assert replayed.returncode == 0, replayed.stderr
    [new_id] = json.loads(replayed.stdout)["queued"]
    assert_refused(verihook(database_url, "deliveries", "replay", new_id), "still pending")
    assert verihook(database_url, "worker", "--drain", "--allow-private-networks").returncode == 0
    assert len(set(receiver.ids("/ok"))) == 1 and len(receiver.ids("/ok")) == 2

    # Failed deliveries of a disabled endpoint: replay is refused until it is enabled.
    gone = next(d for d in listed if d["state"] == "failed")
    assert_refused(
        verihook(database_url, "deliveries", "replay", "--endpoint", gone["endpoint_id"]),
        "disabled",
    )
    again = verihook(database_url, "deliveries", "replay", "--endpoint", ok, "--since", "1h")
    assert again.returncode == 0 and "queued 0 deliveries" in again.stdout
    provider.close()


def test_refused_input(sqlite_url: str) -> None:
    assert_refused(verihook(sqlite_url, "deliveries", "show", "dlv_nope"), "no delivery dlv_nope")
    assert_refused(verihook(sqlite_url, "deliveries", "replay", "dlv_nope"), "no delivery")
    assert_refused(verihook(sqlite_url, "deliveries", "replay"), "either a delivery id")
    assert_refused(
        verihook(sqlite_url, "deliveries", "replay", "--endpoint", "ep_nope"), "no endpoint"
    )
    assert_refused(
        verihook(sqlite_url, "deliveries", "replay", "--endpoint", "x", "--since", "soon"),
        "--since",
    )
    assert_refused(verihook(sqlite_url, "deliveries", "list", "--state", "lost"), "state must")
    assert_refused(verihook("mysql://x", "worker", "--drain"), "database URL")
    assert verihook(sqlite_url, "worker", "--concurrency", "0").returncode == 2


def test_sigterm_stops_cleanly_and_metrics_are_served(
    sqlite_url: str, receiver: TestReceiver
) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    provider = SyncProvider(sqlite_url, allow_private_networks=True)
    provider.add_endpoint(receiver.url("/ok"))
    provider.complete(provider.create_verification().key, 0.5)
    worker = start_worker(sqlite_url, "--metrics-port", str(port))
    try:
        receiver.wait_for(lambda: len(receiver.on("/ok")) == 1)
        deadline = time.monotonic() + 20
        text = ""
        while 'verihook_delivery_attempts_total{outcome="success"} 1.0' not in text:
            assert time.monotonic() < deadline, text
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
                    text = r.read().decode()
            except OSError:
                pass
            time.sleep(0.1)
        assert "verihook_delivery_latency_seconds_bucket" in text
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(30) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    provider.close()


@pytest.mark.slow
def test_sigkill_mid_load_loses_nothing(
    database_url: str, database: Database, receiver: TestReceiver
) -> None:
    events = 240
    provider = SyncProvider(database_url, allow_private_networks=True)
    # Dead workers' leases count against the endpoint's in-flight cap until they expire:
    # leave room above them so each restart can deliver at once.
    provider.add_endpoint(receiver.url("/steady"), max_in_flight=64)
    for _ in range(events):
        provider.complete(provider.create_verification().key, 0.5)
    kills = 0
    for _ in range(3):
        before = len(receiver.on("/steady"))
        worker = start_worker(database_url, "--concurrency", "16", "--log-level", "warning")
        try:
            receiver.wait_for(lambda b=before: len(receiver.on("/steady")) >= b + 40, timeout=60)
        finally:
            worker.kill()  # SIGKILL: no shutdown code runs
            worker.wait(30)
        kills += 1
    # No worker runs now: take back the dead workers' leases at once, then finish.
    recovered = verihook(database_url, "deliveries", "recover", "--force", "--json")
    assert recovered.returncode == 0, recovered.stderr
    done = verihook(database_url, "worker", "--drain", "--allow-private-networks",
                    "--log-level", "warning")  # fmt: skip
    assert done.returncode == 0, done.stderr

    received = Counter(receiver.ids("/steady"))
    with database.connection() as conn:
        rows = conn.execute("SELECT event_id, state, attempts FROM verihook_deliveries")
        successes = conn.execute(
            "SELECT delivery_id, COUNT(*) FROM verihook_attempts WHERE outcome = 'success'"
            " GROUP BY delivery_id"
        )
    assert len(rows) == events
    assert {state for _, state, _ in rows} == {"succeeded"}
    assert len(received) == events  # zero lost
    assert all(n == 1 for _, n in successes) and len(successes) == events
    # Every extra copy was an attempt in flight at a kill: counted, and at most the
    # concurrency per kill.
    attempts = {event_id: int(n) for event_id, _, n in rows}
    assert all(received[e] <= attempts[e] for e in attempts)
    assert sum(n - 1 for n in attempts.values()) <= kills * 16
    provider.close()
