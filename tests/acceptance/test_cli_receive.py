"""``verihook receive`` as a user runs it: a real process, real HTTP, signals, SIGKILL."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from verihook.exceptions import MALFORMED_BODY_MESSAGE
from verihook.format import EventType, Status, WebhookEvent, WebhookSecret, encode_request

SECRET = "YOUR_WEBHOOK_SECRET_32_BYTES_KEY"
VECTORS = json.loads(
    (Path(__file__).parents[1] / "data" / "passbase-aes256cbc.json").read_text("utf-8")
)
_LISTENING = re.compile(r"receiving on (http://\S+)/webhooks")


class ReceiverProcess:
    """A ``verihook receive`` subprocess on a free port; stderr is drained into ``lines``."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        clean = {k: v for k, v in os.environ.items() if not k.startswith("VERIHOOK_")}
        clean.update(env or {})
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "verihook.cli", "receive", "--port", "0", *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=clean,
            text=True,
        )
        self.lines: list[str] = []
        self._queue: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._drainer = threading.Thread(target=self._drain, daemon=True)
        self._drainer.start()
        self.url = ""

    def _drain(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))
            self._queue.put(line)
        self._queue.put(None)

    def wait_listening(self, timeout: float = 20.0) -> ReceiverProcess:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self._queue.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                break
            if line is None:
                break
            match = _LISTENING.search(line)
            if match:
                self.url = match.group(1)
                return self
        self.kill()
        raise AssertionError("receiver did not start:\n" + "\n".join(self.lines))

    def stderr(self) -> str:
        return "\n".join(self.lines)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        self._drainer.join(10)
        assert self.proc.stderr is not None
        self.proc.stderr.close()

    def terminate(self, sig: int = signal.SIGTERM) -> int:
        self.proc.send_signal(sig)
        code = self.proc.wait(20)
        self._drainer.join(10)  # every line it wrote is in self.lines
        return code


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[..., ReceiverProcess]]:
    started: list[ReceiverProcess] = []

    def start(*args: str, env: dict[str, str] | None = None) -> ReceiverProcess:
        process = ReceiverProcess(*args, env=env)
        started.append(process)
        return process.wait_listening()

    yield start
    for process in started:
        process.kill()


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("VERIHOOK_")}
    clean.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "verihook.cli", "receive", "--port", "0", *args],
        capture_output=True,
        text=True,
        env=clean,
        timeout=60,
        check=False,
    )


def stored_events(db: Path) -> list[dict[str, Any]]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT payload FROM verihook_inbox_events ORDER BY seq").fetchall()
    return [json.loads(payload) for (payload,) in rows]


def test_every_vector_replayed_over_http(
    start: Callable[..., ReceiverProcess], tmp_path: Path
) -> None:
    secrets = sorted({v["secret"] for v in VECTORS["valid"] + VECTORS["invalid"]})
    receivers = {
        s: start("--secret", s, "--db", f"sqlite:///{tmp_path / f'{i}.db'}")
        for i, s in enumerate(secrets)
    }
    text = {"content-type": "text/plain"}
    with httpx.Client(timeout=10) as client:
        for vector in VECTORS["invalid"]:
            url = receivers[vector["secret"]].url + "/webhooks"
            reply = client.post(url, headers=text, content=vector["body"])
            assert reply.status_code == 400, vector["name"]
            error = reply.json()["error"]
            if vector["name"] in (
                "json-array",
                "missing-key",
                "unknown-status",
                "reviewed-pending",
                "key-not-uuid",
                "timestamp-string",
            ):
                assert error != MALFORMED_BODY_MESSAGE and error, vector["name"]
            else:
                assert error == MALFORMED_BODY_MESSAGE, vector["name"]
        # Nothing refused was stored.
        for process in receivers.values():
            assert client.get(process.url + "/events").json() == []
        expected: dict[str, list[Any]] = {s: [] for s in secrets}
        for vector in [*VECTORS["valid"], VECTORS["unknown_event"]]:
            url = receivers[vector["secret"]].url + "/webhooks"
            reply = client.post(url, headers=text, content=vector["body"])
            assert reply.status_code == 200, vector["name"]
            plaintext = json.loads(vector["plaintext"])
            if plaintext not in expected[vector["secret"]]:
                expected[vector["secret"]].append(plaintext)
                assert reply.json() == {"status": "stored"}, vector["name"]
            else:
                assert reply.json() == {"status": "duplicate"}, vector["name"]
        for s, process in receivers.items():
            events = client.get(process.url + "/events", params={"limit": 1000}).json()
            assert [e["payload"] for e in reversed(events)] == expected[s]
    for process in receivers.values():
        assert process.terminate() == 0
        assert SECRET not in process.stderr()
        # One log line per event received.
        assert sum(" key=" in line for line in process.lines) == sum(
            v["secret"] == s
            for v in [*VECTORS["valid"], VECTORS["unknown_event"]]
            for s in [next(k for k, p in receivers.items() if p is process)]
        )


def test_sigterm_and_sigint_stop_cleanly_keeping_every_event(
    start: Callable[..., ReceiverProcess], tmp_path: Path
) -> None:
    db = tmp_path / "r.db"
    for sig in (signal.SIGTERM, signal.SIGINT):
        process = start("--db", f"sqlite:///{db}", env={"VERIHOOK_SECRET": SECRET})
        key = str(uuid.uuid4())
        event = WebhookEvent(EventType.VERIFICATION_COMPLETED, key, Status.APPROVED, 1, 2, 3)
        headers, body = encode_request(event, secret=WebhookSecret(SECRET))
        reply = httpx.post(process.url + "/webhooks", headers=headers, content=body, timeout=10)
        assert reply.status_code == 200
        assert process.terminate(sig) == 0
        assert "receiver stopped" in process.stderr()
        assert "Traceback" not in process.stderr()
        assert key in [e["key"] for e in stored_events(db)]


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["--secret", "too-short-but-very-secret"], "exactly 32 bytes"),
        (["--secret", SECRET, "--signing-secret", "whsec_!!"], "signing secret"),
        (["--db", "mysql://nope"], "database URL"),
        (["--db", "sqlite:////nonexistent-dir/x/y.db"], "SQLite"),
        (["--handlers", "no_such_module_here:handlers"], "cannot import"),
        (["--handlers", "nocolon"], "package.module:name"),
    ],
)
def test_bad_configuration_is_one_line_and_exit_1(
    args: list[str], reason: str, tmp_path: Path
) -> None:
    if "--db" not in args:
        args = [*args, "--db", f"sqlite:///{tmp_path / 'x.db'}"]
    result = run_cli(*args)
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("verihook: error:"), result.stderr
    assert reason in lines[0]
    assert "too-short-but-very-secret" not in result.stderr


HANDLERS_MODULE = """
import os
from verihook.receiver import Handlers

handlers = Handlers()
LOG = os.environ["KILL_TEST_LOG"]


@handlers.on("VERIFICATION_COMPLETED")
def record(event):
    with open(LOG, "a") as f:
        f.write(event.key + "\\n")
"""


@pytest.mark.slow
def test_sigkill_under_load_loses_no_acknowledged_event(
    start: Callable[..., ReceiverProcess], tmp_path: Path
) -> None:
    (tmp_path / "kill_handlers.py").write_text(HANDLERS_MODULE)
    log = tmp_path / "handled.txt"
    db = tmp_path / "kill.db"
    env = {"VERIHOOK_SECRET": SECRET, "KILL_TEST_LOG": str(log), "PYTHONPATH": str(tmp_path)}
    args = (
        "--db",
        f"sqlite:///{db}",
        "--handlers",
        "kill_handlers:handlers",
        "--handler-timeout",
        "1",
    )
    process = start(*args, env=env)
    secret = WebhookSecret(SECRET)
    acknowledged: list[str] = []
    stop = threading.Event()

    def send(client: httpx.Client) -> None:
        while not stop.is_set():
            key = str(uuid.uuid4())
            event = WebhookEvent(EventType.VERIFICATION_COMPLETED, key, Status.PENDING, 1, 2, 2)
            headers, body = encode_request(event, secret=secret)
            try:
                reply = client.post(process.url + "/webhooks", headers=headers, content=body)
            except httpx.HTTPError:
                continue  # the server died mid-request: no 200, no promise
            if reply.status_code == 200:
                acknowledged.append(key)

    with ThreadPoolExecutor(16) as pool, httpx.Client(timeout=5) as client:
        for _ in range(16):
            pool.submit(send, client)
        deadline = time.monotonic() + 30
        while len(acknowledged) < 500 and time.monotonic() < deadline:
            time.sleep(0.01)
        process.proc.send_signal(signal.SIGKILL)
        process.proc.wait(10)
        time.sleep(0.2)  # let the senders see the dead server
        stop.set()
    assert len(acknowledged) >= 500
    stored = {e["key"] for e in stored_events(db)}
    assert set(acknowledged) <= stored
    # Restarted, it runs every handler that had not run (claimed ones after their lease).
    start(*args, env=env)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        handled = set(log.read_text().split()) if log.exists() else set()
        if set(acknowledged) <= handled:
            break
        time.sleep(0.1)
    assert set(acknowledged) <= handled
