"""The contract every adapter meets, written once: each test module supplies a ``Send``.

A ``Send`` performs one request through the framework's own test client or runner and
returns the ``Answer``; the checks here are the same for Flask, Django, Lambda and GCF,
and the same answers as the ASGI app's (DESIGN.md section 2).
"""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from verihook import Receiver
from verihook.exceptions import MALFORMED_BODY_MESSAGE
from verihook.format import (
    EventType,
    SigningSecret,
    Status,
    WebhookEvent,
    WebhookSecret,
    encode_request,
    encrypt,
    sign,
)

SECRET = WebhookSecret("YOUR_WEBHOOK_SECRET_32_BYTES_KEY")
SIGNING = SigningSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
WRONG_SIGNING = SigningSecret("whsec_c2VjcmV0LXRoYXQtaXMtbm90LXRoZS1yaWdodC1vbmU=")
KEY = "b76e244e-26a3-49ef-9c72-3e599bf0b5f2"


@dataclass(frozen=True)
class Answer:
    status: int
    headers: Mapping[str, str]  # lower-case names
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


Send = Callable[[str, Mapping[str, str], bytes], Answer]


def make_receiver(database_url: str) -> Receiver:
    return Receiver(SECRET, signing_secrets=[SIGNING], database_url=database_url)


def event(
    kind: EventType = EventType.VERIFICATION_REVIEWED,
    status: Status = Status.APPROVED,
    key: str = KEY,
) -> WebhookEvent:
    return WebhookEvent(
        event=kind, key=key, status=status, created=50, updated=100, processed=100, extra={}
    )


def signed(
    ev: WebhookEvent | bytes,
    *,
    secret: WebhookSecret | None = SECRET,
    signing: SigningSecret = SIGNING,
    msg_id: str | None = None,
) -> tuple[dict[str, str], bytes]:
    return encode_request(
        ev,
        secret=secret,
        signing_secrets=[signing],
        msg_id=msg_id or f"msg_{uuid.uuid4().hex}",
        timestamp=int(time.time()),
    )


def raw(
    body: bytes, content_type: str, *, signing: SigningSecret | None = SIGNING
) -> tuple[dict[str, str], bytes]:
    """A request with exactly this body, signed unless ``signing`` is None."""
    headers = {"content-type": content_type}
    if signing is not None:
        msg_id, timestamp = f"msg_{uuid.uuid4().hex}", int(time.time())
        headers["webhook-id"] = msg_id
        headers["webhook-timestamp"] = str(timestamp)
        headers["webhook-signature"] = sign(msg_id, timestamp, body, [signing])
    return headers, body


@dataclass(frozen=True)
class Refusal:
    name: str
    method: str
    request: Callable[[], tuple[dict[str, str], bytes]]
    status: int
    error: str  # the whole JSON "error" for the uniform message, else a part of it

    def __str__(self) -> str:
        return self.name


REFUSALS = [
    Refusal(
        "not-base64",
        "POST",
        lambda: raw(b"not base64 at all!", "text/plain"),
        400,
        MALFORMED_BODY_MESSAGE,
    ),
    Refusal(
        "bad-padding",
        "POST",
        lambda: raw(base64.b64encode(bytes(range(48))), "text/plain"),
        400,
        MALFORMED_BODY_MESSAGE,
    ),
    Refusal(
        "not-json",
        "POST",
        lambda: raw(encrypt(b"{not json", SECRET), "text/plain"),
        400,
        MALFORMED_BODY_MESSAGE,
    ),
    Refusal(
        "wrong-content-type",
        "POST",
        lambda: raw(encrypt(event().to_json(), SECRET), "application/xml"),
        415,
        "content type",
    ),
    Refusal(
        "plain-json-with-a-secret",
        "POST",
        lambda: raw(event().to_json(), "application/json"),
        415,
        "expects encryption",
    ),
    Refusal("oversized", "POST", lambda: raw(b"A" * (64 * 1024 + 1), "text/plain"), 413, "65536"),
    Refusal(
        "wrong-signature",
        "POST",
        lambda: signed(event(), signing=WRONG_SIGNING),
        401,
        "signature",
    ),
    Refusal(
        "no-signature",
        "POST",
        lambda: encode_request(event(), secret=SECRET),
        401,
        "",
    ),
    Refusal("get", "GET", lambda: ({}, b""), 405, "method not allowed"),
    Refusal("put", "PUT", lambda: signed(event()), 405, "method not allowed"),
]


def check_stored_once(send: Send, receiver: Receiver) -> None:
    """A valid event is stored before the 200; the same delivery again is 200 and not stored."""
    headers, body = signed(event(), msg_id="msg_first")
    first = send("POST", headers, body)
    assert (first.status, first.json()) == (200, {"status": "stored"})
    assert first.headers["content-type"] == "application/json"
    again = send("POST", headers, body)
    assert (again.status, again.json()) == (200, {"status": "duplicate"})
    events = receiver.recent_events()
    assert [(e.webhook_id, e.event_type, e.duplicates) for e in events] == [
        ("msg_first", "VERIFICATION_REVIEWED", 1)
    ]
    state = receiver.state(KEY)
    assert state is not None and state.status == Status.APPROVED


def check_refusal(send: Send, receiver: Receiver, case: Refusal) -> None:
    headers, body = case.request()
    answer = send(case.method, headers, body)
    assert answer.status == case.status, answer.body
    assert answer.headers["content-type"] == "application/json"
    error = answer.json()["error"]
    if case.error == MALFORMED_BODY_MESSAGE:
        assert error == MALFORMED_BODY_MESSAGE  # uniform: no padding oracle
    else:
        assert case.error in error
    if case.status == 405:
        assert answer.headers["allow"] == "POST"
    assert receiver.recent_events() == []


def check_store_down(send: Send, receiver: Receiver, bring_back: Callable[[], None]) -> None:
    """503 with Retry-After while the store is unreachable; 200 once it is back."""
    headers, body = signed(event())
    down = send("POST", headers, body)
    assert (down.status, down.headers["retry-after"]) == (503, "5")
    assert "retry" in down.json()["error"]
    bring_back()
    up = send("POST", headers, body)
    assert (up.status, up.json()) == (200, {"status": "stored"})
    assert len(receiver.recent_events()) == 1


def wait_for(condition: Callable[[], Any], timeout: float = 10.0, what: str = "it") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)
