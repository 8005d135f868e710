"""Random and mutated requests thrown at the ASGI app in-process: only deliberate answers.

No 5xx (the store is up), no exception out of the app, nothing stored for a refused body.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import orjson
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from receiver_factories import SECRET, make_event

from verihook import Receiver
from verihook.format import SigningSecret, encode_request, encrypt

SIGNING = SigningSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
ALLOWED = {200, 400, 401, 404, 405, 413, 415}
VALID_HEADERS, VALID_BODY = encode_request(
    make_event(), secret=SECRET, signing_secrets=[SIGNING], msg_id="msg_1", timestamp=0
)
CONTENT_TYPES = st.sampled_from(
    [
        *["text/plain", "application/json"] * 4,
        "text/plain; charset=utf-8",
        "APPLICATION/JSON",
        "",
        "text/html",
        "multipart/form-data; boundary=x",
    ]
) | st.text(max_size=40)


def mutated(body: bytes) -> st.SearchStrategy[bytes]:
    def apply(ops: list[tuple[str, int, int]]) -> bytes:
        data = bytearray(body)
        for op, position, value in ops:
            if not data:
                break
            i = position % len(data)
            if op == "flip":
                data[i] ^= 1 << (value % 8)
            elif op == "cut":
                del data[i:]
            elif op == "insert":
                data[i:i] = bytes([value % 256])
            else:
                del data[i]
        return bytes(data)

    op = st.tuples(
        st.sampled_from(["flip", "cut", "insert", "delete"]),
        st.integers(0, 10_000),
        st.integers(0, 255),
    )
    return st.lists(op, min_size=1, max_size=4).map(apply)


def event_json() -> st.SearchStrategy[bytes]:
    # orjson writes 64-bit integers at most.
    integers = st.integers(-(2**63), 2**64 - 1)
    scalar = st.none() | st.booleans() | integers | st.floats() | st.text(max_size=40)
    field = st.sampled_from(["event", "key", "status", "created", "updated", "processed", "x"])
    value = scalar | st.sampled_from(
        [
            "VERIFICATION_COMPLETED",
            "VERIFICATION_REVIEWED",
            "pending",
            "approved",
            "b76e244e-26a3-49ef-9c72-3e599bf0b5f2",
            1582628711,
        ]
    )
    base = orjson.loads(make_event().to_json())
    return st.dictionaries(field, value, max_size=8).map(
        lambda changes: orjson.dumps({**base, **changes})
    ) | st.recursive(
        scalar, lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner), max_leaves=10
    ).map(orjson.dumps)


BODIES = (
    st.binary(max_size=2000)
    | mutated(VALID_BODY)
    | event_json()
    | event_json().map(lambda b: encrypt(b, SECRET))
)
HEADER_NAMES = st.sampled_from(
    ["webhook-id", "webhook-timestamp", "webhook-signature", "content-length", "x-anything"]
)


async def call(
    app: Any, method: str, path: str, headers: list[tuple[bytes, bytes]], chunks: list[bytes]
) -> tuple[int, bytes]:
    messages = [
        {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
        for i, c in enumerate(chunks)
    ] or [{"type": "http.request", "body": b""}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "root_path": "",
        "query_string": b"",
        "headers": headers,
    }
    await app(scope, receive, send)
    assert sent[0]["type"] == "http.response.start"
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


def count(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM verihook_inbox_events").fetchone()[0])


@settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    body=BODIES,
    content_type=CONTENT_TYPES,
    extra=st.lists(st.tuples(HEADER_NAMES, st.text(max_size=60)), max_size=4),
    signed=st.booleans(),
    split=st.integers(1, 5),
    # Weighted towards the interesting part: POST /webhooks with a plausible type.
    method=st.sampled_from(["POST"] * 8 + ["GET", "PUT"]),
    path=st.sampled_from(["/webhooks"] * 6 + ["/", "/events", "/x"]),
    oversize=st.integers(0, 19),
)
def test_random_requests_get_deliberate_answers(
    tmp_path: Path,
    body: bytes,
    content_type: str,
    extra: list[tuple[str, str]],
    signed: bool,
    split: int,
    method: str,
    path: str,
    oversize: int,
) -> None:
    if oversize == 0:  # one in twenty: over the 64 KiB cap (made here: a short repr on failure)
        body += b"A" * 70_000
    db = tmp_path / ("signed.db" if signed else "plain.db")
    receiver = Receiver(
        SECRET,
        signing_secrets=[SIGNING] if signed else (),
        database_url=f"sqlite:///{db}",
        allow_unencrypted=not signed,
    )
    try:
        receiver.open()
        before = count(db)
        headers = [(b"content-type", content_type.encode("utf-8"))]
        headers += [(k.encode(), v.encode("utf-8")) for k, v in extra]
        size = max(1, len(body) // split)
        chunks = [body[i : i + size] for i in range(0, len(body), size)]
        status, reply = asyncio.run(call(receiver.asgi_app(), method, path, headers, chunks))
        event(f"status {status}")
        assert status in ALLOWED, (status, reply)
        orjson.loads(reply)  # always a JSON answer: raises otherwise
        if status != 200 or path not in ("/webhooks", "/"):
            assert count(db) == before
    finally:
        receiver.stop()
