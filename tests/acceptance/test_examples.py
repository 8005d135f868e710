"""Each example in examples/ started as its README says, sent a real webhook, and stopped."""

from __future__ import annotations

import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from verihook.format import EventType, Status, WebhookEvent, WebhookSecret, encode_request

ROOT = Path(__file__).parents[2]
EXAMPLES = ROOT / "examples"
BIN = Path(sys.executable).parent
SECRET = "YOUR_WEBHOOK_SECRET_32_BYTES_KEY"
KEY = "3f1b2c9e-8a7d-4e6f-b5a4-0c9d8e7f6a5b"


class ExampleProcess:
    """A server subprocess whose merged output is drained into ``lines``."""

    def __init__(self, args: list[str], database: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("VERIHOOK_")}
        env.update(
            VERIHOOK_SECRET=SECRET,
            VERIHOOK_DATABASE_URL=f"sqlite:///{database}",
            PYTHONUNBUFFERED="1",
        )
        self.proc = subprocess.Popen(
            args,
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._queue: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._drainer = threading.Thread(target=self._drain, daemon=True)
        self._drainer.start()

    def _drain(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))
            self._queue.put(line)
        self._queue.put(None)

    def wait_for_line(self, pattern: str, timeout: float = 30.0) -> re.Match[str]:
        """The first output line (from now on) matching ``pattern``; fails after ``timeout``."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._queue.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                break
            match = re.search(pattern, line)
            if match:
                return match
        raise AssertionError(f"no line matching {pattern!r}; output:\n" + "\n".join(self.lines))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._drainer.join(5)
        assert self.proc.stdout is not None
        self.proc.stdout.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def database(tmp_path: Path) -> Path:
    return tmp_path / "example.db"


def start(name: str, database: Path) -> tuple[ExampleProcess, str]:
    """Start an example as examples/README.md runs it; its base URL for webhooks."""
    if name == "fastapi":
        args = [str(BIN / "uvicorn"), "--app-dir", "examples", "fastapi_app:app"]
        server = ExampleProcess([*args, "--host", "127.0.0.1", "--port", "0"], database)
        url = server.wait_for_line(r"running on (http://\S+)").group(1)
        return server, f"{url}/passbase/webhooks"
    if name == "flask":
        args = [str(BIN / "flask"), "--app", "examples/flask_app.py", "run", "--port", "0"]
        server = ExampleProcess(args, database)
        url = server.wait_for_line(r"Running on (http://\S+)").group(1)
        return server, f"{url}/passbase/webhooks"
    port = free_port()
    args = [sys.executable, "examples/django_app.py", "runserver", f"127.0.0.1:{port}"]
    server = ExampleProcess([*args, "--noreload"], database)
    server.wait_for_line(r"Starting development server at")
    return server, f"http://127.0.0.1:{port}/passbase/webhooks"


@pytest.fixture(params=["fastapi", "flask", "django"])
def example(request: pytest.FixtureRequest, database: Path) -> Iterator[tuple[ExampleProcess, str]]:
    server, url = start(request.param, database)
    try:
        yield server, url
    finally:
        server.stop()


def test_an_example_stores_a_webhook_and_runs_its_handler(
    example: tuple[ExampleProcess, str],
) -> None:
    server, url = example
    event = WebhookEvent(
        event=EventType.VERIFICATION_REVIEWED,
        key=KEY,
        status=Status.APPROVED,
        created=1_700_000_000,
        updated=1_700_000_100,
        processed=1_700_000_100,
    )
    headers, body = encode_request(event, secret=WebhookSecret(SECRET), msg_id="msg_example")
    with httpx.Client(timeout=10) as client:
        reply = client.post(url, headers=headers, content=body)
        assert (reply.status_code, reply.json()) == (200, {"status": "stored"}), server.lines
        server.wait_for_line(rf"reviewed {KEY}: approved")
        # The secret is set, so a plain JSON body cannot sneak past it.
        plain = client.post(
            url, headers={"content-type": "application/json"}, content=event.to_json()
        )
        assert plain.status_code == 415
        assert client.get(url).status_code == 405
    assert SECRET not in "\n".join(server.lines)
