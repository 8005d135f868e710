"""For the receiver's integration tests: events, requests, bounded waits, a live server."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import uvicorn

from verihook.format import EventType, Status, WebhookEvent, WebhookSecret, encode_request

SECRET = WebhookSecret("YOUR_WEBHOOK_SECRET_32_BYTES_KEY")
KEY = "b76e244e-26a3-49ef-9c72-3e599bf0b5f2"


def make_event(
    kind: EventType = EventType.VERIFICATION_COMPLETED,
    status: Status = Status.PENDING,
    updated: int = 100,
    key: str = KEY,
    **extra: Any,
) -> WebhookEvent:
    return WebhookEvent(
        event=kind,
        key=key,
        status=status,
        created=50,
        updated=updated,
        processed=updated,
        extra=extra,
    )


def encrypted(event: WebhookEvent, msg_id: str | None = None) -> tuple[dict[str, str], bytes]:
    return encode_request(event, secret=SECRET, msg_id=msg_id)


def wait_for(condition: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    """Poll until ``condition()`` is truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


class LiveServer:
    def __init__(self, app: Any) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        config = uvicorn.Config(app, lifespan="on", log_level="warning", access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]})

    def __enter__(self) -> LiveServer:
        self.thread.start()
        wait_for(lambda: self.server.started, 10, "uvicorn to start")
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()
