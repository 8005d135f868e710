"""The stored event's number travels with the reply; serverless adapters wait on it, no decode."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest
from receiver_factories import KEY, SECRET, encrypted, make_event

from verihook import Receiver
from verihook.format import SigningSecret, encode_request
from verihook.receiver.adapters.aws_lambda import make_handler
from verihook.receiver.receiver import DUPLICATE, STORED

SIGNING = SigningSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
# A receiver living in 2020: only its own clock accepts these signatures.
THEN = 1_600_000_000


@pytest.fixture
def receiver(database_url: str) -> Iterator[Receiver]:
    r = Receiver(SECRET, database_url=database_url)
    yield r
    r.stop()


def test_receive_sync_numbers_its_reply_with_the_stored_seq(receiver: Receiver) -> None:
    headers, body = encrypted(make_event(), "msg_1")
    first = receiver.receive_sync(headers, body)
    [stored] = receiver.history(KEY)
    assert (first, first.seq) == (STORED, stored.seq)
    again = receiver.receive_sync(headers, body)
    assert (again, again.seq) == (DUPLICATE, stored.seq)  # the original's number
    other = receiver.receive_sync(*encrypted(make_event(updated=200), "msg_2"))
    assert other.seq == receiver.history(KEY)[-1].seq != stored.seq


async def test_the_async_reply_stays_the_shared_constant(receiver: Receiver) -> None:
    # The ASGI app sends STORED pre-encoded, found by identity.
    reply = await receiver.receive(*encrypted(make_event()))
    assert reply is STORED and reply.seq is None


def test_a_refusal_carries_no_seq(receiver: Receiver) -> None:
    reply = receiver.receive_sync({"content-type": "text/plain"}, b"%%%")
    assert (reply.status, reply.seq) == (400, None)


def invoke(
    handler: Callable[[Any, Any], dict[str, Any]], headers: dict[str, str], body: bytes
) -> Any:
    invocation = {
        "version": "2.0",
        "requestContext": {"http": {"method": "POST"}},
        "headers": headers,
        "body": body.decode("utf-8"),
        "isBase64Encoded": False,
    }
    response = handler(invocation, None)
    return response["statusCode"], orjson.loads(response["body"])


def slow_recorder(seen: list[str]) -> Callable[[Any], None]:
    def record(event: Any) -> None:
        time.sleep(0.3)  # long after the function would have returned without waiting
        seen.append(event.key or "no key")

    return record


def test_lambda_waits_for_the_handlers_of_an_event_its_own_clock_accepted(
    database_url: str,
) -> None:
    # The event's signature is valid by the receiver's clock only: a second decode by the
    # wall clock would refuse it, find no event, and return before the handler ran.
    receiver = Receiver(
        SECRET, signing_secrets=[SIGNING], database_url=database_url, clock=lambda: THEN
    )
    try:
        seen: list[str] = []
        receiver.on("VERIFICATION_COMPLETED")(slow_recorder(seen))
        headers, body = encode_request(
            make_event(), secret=SECRET, signing_secrets=[SIGNING], msg_id="msg_1", timestamp=THEN
        )
        assert invoke(make_handler(receiver), headers, body) == (200, {"status": "stored"})
        assert seen == [KEY]
    finally:
        receiver.stop()


def test_lambda_waits_for_the_handlers_of_an_event_without_a_key(receiver: Receiver) -> None:
    # An unknown event may have no verification key to look it up by; its seq is enough.
    seen: list[str] = []
    receiver.on_unknown(slow_recorder(seen))
    payload = orjson.dumps({"event": "SOMETHING_NEW", "id": str(uuid.uuid4())})
    headers, body = encode_request(payload, secret=SECRET, msg_id="msg_unknown")
    assert invoke(make_handler(receiver), headers, body) == (200, {"status": "stored"})
    assert seen == ["no key"]


def test_lambda_does_not_wait_on_a_duplicate(receiver: Receiver) -> None:
    release = threading.Event()
    receiver.on("VERIFICATION_COMPLETED")(lambda event: release.wait(30))
    headers, body = encrypted(make_event(), "msg_1")
    try:
        first = make_handler(receiver, handler_wait=0.05)
        assert invoke(first, headers, body) == (200, {"status": "stored"})
        # The original's run is still in its handler: a duplicate enqueued nothing to wait for.
        started = time.monotonic()
        assert invoke(make_handler(receiver), headers, body) == (200, {"status": "duplicate"})
        assert time.monotonic() - started < 1.0
    finally:
        release.set()
