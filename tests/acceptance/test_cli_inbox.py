"""``verihook inbox failed|retry|prune`` as a user runs them: real processes, both backends.

The failed runs are made the way they happen: a Receiver whose handler fails for good. The
commands run as subprocesses against the same store, and a ``verihook receive`` process
picks up a retry made by another process.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from verihook import Receiver
from verihook.format import EventType, Status, WebhookEvent, WebhookSecret, encode_request
from verihook.receiver import HandlerRetry

SECRET = WebhookSecret("YOUR_WEBHOOK_SECRET_32_BYTES_KEY")
DAY = 86400.0
HANDLER = "record"
RECEIVE = [sys.executable, "-m", "verihook.cli", "receive", "--port", "0"]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("VERIHOOK_")}
    clean.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "verihook.cli", "inbox", *args],
        capture_output=True,
        text=True,
        env=clean,
        timeout=60,
        check=False,
    )


def ok(*args: str) -> str:
    result = run(*args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def refused(code: int, *args: str) -> str:
    """Run, expect exit ``code`` without a traceback; return stderr."""
    result = run(*args)
    assert result.returncode == code, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    return result.stderr


def event(key: str | None = None) -> WebhookEvent:
    return WebhookEvent(
        EventType.VERIFICATION_COMPLETED, key or str(uuid.uuid4()), Status.PENDING, 1, 2, 2
    )


def wait_for(condition: Any, timeout: float = 10.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
    return value


def store_events(
    db: str, events: list[WebhookEvent], *, handler_fails: bool, ago: float = 0.0
) -> list[int]:
    """Receive the events in a Receiver (its clock ``ago`` seconds behind), run the handler
    (which fails for good at once, or succeeds), and return the events' seqs."""
    receiver = Receiver(
        SECRET, database_url=db, retry=HandlerRetry(max_attempts=1), clock=lambda: time.time() - ago
    )

    @receiver.on("VERIFICATION_COMPLETED", name=HANDLER)
    def record(ev: WebhookEvent) -> None:
        if handler_fails:
            raise RuntimeError(f"integrator down for {ev.key}")

    try:
        receiver.start()
        seqs = []
        for ev in events:
            reply = receiver.receive_sync(*encode_request(ev, secret=SECRET))
            assert reply.status == 200 and reply.seq is not None
            seqs.append(reply.seq)
        finished = "failed" if handler_fails else "succeeded"
        wait_for(
            lambda: all(r.state == finished for s in seqs for r in receiver.runs(s)),
            what=f"the runs to be {finished}",
        )
        return seqs
    finally:
        receiver.stop()


def runs(db: str, seq: int) -> list[tuple[str, str, int]]:
    receiver = Receiver(database_url=db)
    try:
        return [(r.handler, r.state, r.attempts) for r in receiver.runs(seq)]
    finally:
        receiver.stop()


def test_failed_lists_the_runs_that_gave_up_as_json_and_as_a_table(database_url: str) -> None:
    assert json.loads(ok("failed", "--db", database_url, "--json")) == []
    keys = [str(uuid.uuid4()) for _ in range(3)]
    seqs = store_events(database_url, [event(k) for k in keys], handler_fails=True)
    listed = json.loads(ok("failed", "--db", database_url, "--json"))
    assert sorted(r["event_seq"] for r in listed) == sorted(seqs)
    by_seq = {r["event_seq"]: r for r in listed}
    for seq, key in zip(seqs, keys, strict=True):
        row = by_seq[seq]
        assert (row["handler"], row["state"], row["attempts"]) == (HANDLER, "failed", 1)
        assert row["last_error"] == f"RuntimeError: integrator down for {key}"
        assert abs(row["updated_at"] - time.time()) < 60
    assert len(json.loads(ok("failed", "--db", database_url, "--limit", "2", "--json"))) == 2

    table = ok("failed", "--db", database_url)
    rows = [[cell.strip() for cell in line.split("│")[1:-1]] for line in table.splitlines()]
    failed_at = {
        seq: time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(by_seq[seq]["updated_at"]))
        for seq in seqs
    }
    assert sorted(row for row in rows if row and row[0].isdigit()) == sorted(
        [str(seq), HANDLER, "1", f"RuntimeError: integrator down for {key}", failed_at[seq]]
        for seq, key in zip(seqs, keys, strict=True)
    )


def test_retry_one_run_then_all_of_them(database_url: str) -> None:
    first, second, third = store_events(
        database_url, [event(), event(), event()], handler_fails=True
    )
    assert ok("retry", str(second), HANDLER, "--db", database_url) == "queued 1 failed run again\n"
    assert runs(database_url, second) == [(HANDLER, "pending", 0)]
    left = json.loads(ok("failed", "--db", database_url, "--json"))
    assert sorted(r["event_seq"] for r in left) == sorted([first, third])

    # The same run again is no longer failed: refused, in one line.
    stderr = refused(1, "retry", str(second), HANDLER, "--db", database_url)
    assert stderr == f"verihook: error: no failed run of handler '{HANDLER}' for event {second}\n"

    assert json.loads(ok("retry", "--all-failed", "--db", database_url, "--json")) == {"queued": 2}
    assert [runs(database_url, s) for s in (first, third)] == [[(HANDLER, "pending", 0)]] * 2
    assert ok("retry", "--all-failed", "--db", database_url) == "queued 0 failed runs again\n"


@pytest.mark.parametrize(
    "args",
    [
        ["retry", "999999", HANDLER],
        ["retry", "1", "no-such-handler"],
    ],
)
def test_an_unknown_run_is_one_line_and_exit_1(tmp_path: Path, args: list[str]) -> None:
    db = f"sqlite:///{tmp_path / 'r.db'}"
    store_events(db, [event()], handler_fails=True)
    stderr = refused(1, *args, "--db", db)
    assert len(stderr.splitlines()) == 1 and stderr.startswith("verihook: error: no failed run")


@pytest.mark.parametrize(
    "args",
    [
        ["retry"],
        ["retry", "1"],
        ["retry", "1", HANDLER, "--all-failed"],
        ["retry", "one", HANDLER],
        ["prune"],
        ["prune", "--older-than", "30"],
        ["prune", "--older-than", "-1d"],
        ["prune", "--older-than", "1,5d"],
        ["prune", "--older-than", "30x"],
        ["failed", "--limit", "0"],
    ],
    ids=" ".join,
)
def test_usage_errors_exit_2(tmp_path: Path, args: list[str]) -> None:
    db = tmp_path / "r.db"
    stderr = refused(2, *args, "--db", f"sqlite:///{db}")
    assert "Usage: verihook inbox" in stderr
    assert not db.exists()  # refused before the store was touched


def test_a_bad_store_is_one_line_and_exit_1(tmp_path: Path) -> None:
    for args in (["failed"], ["prune", "--older-than", "1d"], ["retry", "--all-failed"]):
        stderr = refused(1, *args, "--db", "mysql://nope")
        assert (
            stderr == "verihook: error: database URL must start with sqlite:/// or postgresql://\n"
        )


def test_prune_deletes_old_finished_events_and_keeps_the_rest(database_url: str) -> None:
    kept_key = str(uuid.uuid4())
    old_ok = store_events(
        database_url, [event(), event(kept_key)], handler_fails=False, ago=40 * DAY
    )
    [old_failed] = store_events(database_url, [event()], handler_fails=True, ago=40 * DAY)
    [young] = store_events(database_url, [event()], handler_fails=False, ago=DAY)

    assert ok("prune", "--older-than", "30d", "--db", database_url) == "pruned 2 events\n"
    assert json.loads(ok("prune", "--older-than", "30d", "--db", database_url, "--json")) == {
        "pruned": 0
    }
    receiver = Receiver(database_url=database_url)
    try:
        assert sorted(e.seq for e in receiver.recent_events()) == [old_failed, young]
        assert all(receiver.runs(seq) == [] for seq in old_ok)
        # The verification's state outlives its pruned events.
        state = receiver.state(kept_key)
        assert state is not None and state.status is Status.PENDING
        assert receiver.history(kept_key) == []
    finally:
        receiver.stop()

    assert ok("prune", "--older-than", "30d", "--include-failed", "--db", database_url) == (
        "pruned 1 event\n"
    )
    assert json.loads(ok("failed", "--db", database_url, "--json")) == []
    assert ok("prune", "--older-than", "2d", "--db", database_url) == "pruned 0 events\n"


HANDLERS_MODULE = f"""
import os
from verihook.receiver import Handlers

handlers = Handlers()


@handlers.on("VERIFICATION_COMPLETED", name={HANDLER!r})
def record(event):
    with open(os.environ["INBOX_TEST_LOG"], "a") as f:
        f.write(event.key + "\\n")
"""


@pytest.fixture
def receive_process(tmp_path: Path) -> Iterator[Any]:
    """Start ``verihook receive`` with the handlers above; killed at the end."""
    started: list[tuple[subprocess.Popen[str], threading.Thread]] = []

    def start(db: str, log: Path) -> subprocess.Popen[str]:
        (tmp_path / "inbox_handlers.py").write_text(HANDLERS_MODULE)
        env = {k: v for k, v in os.environ.items() if not k.startswith("VERIHOOK_")}
        env.update({"INBOX_TEST_LOG": str(log), "PYTHONPATH": str(tmp_path)})
        process = subprocess.Popen(
            [*RECEIVE, "--db", db, "--handlers", "inbox_handlers:handlers"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=env,
            text=True,
        )
        lines: queue.SimpleQueue[str] = queue.SimpleQueue()

        def drain() -> None:
            assert process.stderr is not None
            for line in process.stderr:
                lines.put(line)

        drainer = threading.Thread(target=drain, daemon=True)
        drainer.start()
        started.append((process, drainer))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if "receiving on" in lines.get(timeout=0.5):
                    return process
            except queue.Empty:
                if process.poll() is not None:
                    break
        raise AssertionError("verihook receive did not start")

    yield start
    for process, drainer in started:
        if process.poll() is None:
            process.kill()
        process.wait(10)
        drainer.join(10)
        assert process.stderr is not None
        process.stderr.close()


def test_a_running_receiver_runs_a_run_retried_from_the_cli(
    database_url: str, tmp_path: Path, receive_process: Any
) -> None:
    key = str(uuid.uuid4())
    [seq] = store_events(database_url, [event(key)], handler_fails=True)
    log = tmp_path / "handled.txt"
    receive_process(database_url, log)
    time.sleep(1.5)  # a poll or more: a failed run is not run again by itself
    assert not log.exists()

    ok("retry", str(seq), HANDLER, "--db", database_url)
    retried = time.monotonic()
    wait_for(log.exists, timeout=10, what="the receiver to run the retried handler")
    assert time.monotonic() - retried < 5
    assert log.read_text() == key + "\n"
    wait_for(lambda: runs(database_url, seq) == [(HANDLER, "succeeded", 1)], what="success")
