"""``Receiver`` end to end in-process: decode, store, answer, run handlers; both backends."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from receiver_factories import KEY, SECRET, encrypted, make_event, wait_for

from verihook import Receiver
from verihook.exceptions import MALFORMED_BODY_MESSAGE, InvalidInput, NotFound
from verihook.format import EventType, SigningSecret, Status, encode_request
from verihook.receiver import HandlerRetry, VerificationState

C, R = EventType.VERIFICATION_COMPLETED, EventType.VERIFICATION_REVIEWED
P, A = Status.PENDING, Status.APPROVED


@pytest.fixture
def receiver(database_url: str) -> Iterator[Receiver]:
    r = Receiver(
        SECRET,
        database_url=database_url,
        retry=HandlerRetry(max_attempts=3, base_delay=0.05),
    )
    yield r
    r.stop()


async def test_a_stored_event_answers_200_and_a_duplicate_200_again(receiver: Receiver) -> None:
    headers, body = encrypted(make_event(), "msg_1")
    first = await receiver.receive(headers, body)
    assert (first.status, orjson.loads(first.body)) == (200, {"status": "stored"})
    again = await receiver.receive(headers, body)
    assert (again.status, orjson.loads(again.body)) == (200, {"status": "duplicate"})
    assert receiver.state(KEY) == VerificationState.from_event(make_event())
    [stored] = receiver.history(KEY)
    assert (stored.webhook_id, stored.duplicates) == ("msg_1", 1)


def test_receive_sync_stores_too(receiver: Receiver) -> None:
    reply = receiver.receive_sync(*encrypted(make_event()))
    assert reply.status == 200
    assert [e.status for e in receiver.recent_events()] == ["pending"]


@pytest.mark.parametrize(
    ("headers", "body", "status", "message"),
    [
        ({"content-type": "text/plain"}, b"%%%not base64!!!", 400, MALFORMED_BODY_MESSAGE),
        ({"content-type": "text/plain"}, b"A" * 64, 400, MALFORMED_BODY_MESSAGE),
        ({"content-type": "application/json"}, make_event().to_json(), 415, None),
        ({"content-type": "application/xml"}, b"<x/>", 415, None),
        ({"content-type": "text/plain"}, b"A" * 70_000, 413, None),
    ],
)
async def test_refused_bodies_get_their_status_and_store_nothing(
    receiver: Receiver, headers: dict[str, str], body: bytes, status: int, message: str | None
) -> None:
    reply = await receiver.receive(headers, body)
    assert reply.status == status
    assert reply.content_type == "application/json"
    error = orjson.loads(reply.body)["error"]
    if message is not None:
        assert error == message
    assert receiver.recent_events() == []


async def test_an_invalid_event_names_the_field(receiver: Receiver) -> None:
    from verihook.format import encrypt

    body = encrypt(b'{"event":"VERIFICATION_COMPLETED","key":"nope"}', SECRET)
    reply = await receiver.receive({"content-type": "text/plain"}, body)
    assert reply.status == 400
    assert "missing" in orjson.loads(reply.body)["error"]


async def test_signatures_with_rotation(database_url: str) -> None:
    old, new, stranger = (SigningSecret.generate() for _ in range(3))
    receiver = Receiver(SECRET, signing_secrets=[old, new.reveal()], database_url=database_url)
    try:
        now = int(time.time())
        for i, key in enumerate([old, new]):
            headers, body = encode_request(
                make_event(updated=100 + i),
                secret=SECRET,
                signing_secrets=[key],
                msg_id=f"msg_{i}",
                timestamp=now,
            )
            assert (await receiver.receive(headers, body)).status == 200
        for headers, body in [
            encode_request(
                make_event(updated=200),
                secret=SECRET,
                signing_secrets=[stranger],
                msg_id="msg_x",
                timestamp=now,
            ),
            encode_request(
                make_event(updated=201),
                secret=SECRET,
                signing_secrets=[old],
                msg_id="msg_y",
                timestamp=now - 3600,
            ),
            encode_request(make_event(updated=202), secret=SECRET),
        ]:
            assert (await receiver.receive(headers, body)).status == 401
        assert len(receiver.recent_events()) == 2
    finally:
        receiver.stop()


async def test_plain_json_without_a_secret(database_url: str) -> None:
    receiver = Receiver(database_url=database_url)
    try:
        headers, body = encode_request(make_event())
        assert (await receiver.receive(headers, body)).status == 200
        headers["content-type"] = "application/json; charset=utf-8"
        assert (await receiver.receive(headers, make_event(updated=1).to_json())).status == 200
        assert (await receiver.receive({"content-type": "text/plain"}, b"x")).status == 415
    finally:
        receiver.stop()


async def test_an_overlong_webhook_id_is_refused(receiver: Receiver) -> None:
    headers, body = encrypted(make_event(), "m" * 300)
    assert (await receiver.receive(headers, body)).status == 400


async def test_sync_and_async_handlers_run_once_per_distinct_event(receiver: Receiver) -> None:
    seen: list[tuple[str, Any]] = []
    lock = threading.Lock()

    @receiver.on("VERIFICATION_COMPLETED")
    def completed(event: Any) -> None:
        with lock:
            seen.append(("completed", event))

    @receiver.on(EventType.VERIFICATION_REVIEWED)
    async def reviewed(event: Any) -> None:
        await asyncio.sleep(0)
        with lock:
            seen.append(("reviewed", event))

    @receiver.on_change
    def changed(old: Any, new: Any) -> None:
        with lock:
            seen.append(("changed", (old, new)))

    @receiver.on_unknown
    async def unknown(event: Any) -> None:
        with lock:
            seen.append(("unknown", event))

    await asyncio.to_thread(receiver.start)
    pending, approved = make_event(), make_event(R, A, 120)
    for event in [pending, pending, approved, pending]:
        assert (await receiver.receive(*encrypted(event))).status == 200
    unknown_body = orjson.dumps({"event": "IDENTITY_DELETED", "key": KEY})
    headers, body = encode_request(unknown_body, secret=SECRET)
    assert (await receiver.receive(headers, body)).status == 200
    await asyncio.to_thread(wait_for, lambda: len(seen) >= 5, 10, "handlers")
    await asyncio.sleep(0.2)  # room for a wrong extra run to show up
    kinds = Counter(kind for kind, _ in seen)
    assert kinds == {"completed": 1, "reviewed": 1, "changed": 2, "unknown": 1}
    changes = [arg for kind, arg in seen if kind == "changed"]
    assert sorted(changes, key=lambda c: c[0] is not None) == [
        (None, VerificationState.from_event(pending)),
        (VerificationState.from_event(pending), VerificationState.from_event(approved)),
    ]
    assert [arg for kind, arg in seen if kind == "reviewed"] == [approved]
    [unknown_event] = [arg for kind, arg in seen if kind == "unknown"]
    assert unknown_event.event == "IDENTITY_DELETED"


async def test_a_failing_handler_is_retried_then_failed_and_blocks_nobody(
    receiver: Receiver,
) -> None:
    calls: Counter[str] = Counter()
    is_broken = True

    @receiver.on("VERIFICATION_COMPLETED")
    def broken(event: Any) -> None:
        calls["broken"] += 1
        if is_broken:
            raise RuntimeError("handler is broken")

    @receiver.on("VERIFICATION_COMPLETED")
    def fine(event: Any) -> None:
        calls["fine"] += 1

    await asyncio.to_thread(receiver.start)
    for i in range(3):
        assert (await receiver.receive(*encrypted(make_event(updated=100 + i)))).status == 200
    failed = await asyncio.to_thread(
        wait_for,
        lambda: len(receiver.failed_runs()) == 3 and receiver.failed_runs(),
        15,
        "three failed runs",
    )
    assert calls["fine"] == 3
    assert calls["broken"] == 9  # max_attempts=3 for each of the three events
    assert {(r.attempts, r.last_error) for r in failed} == {(3, "RuntimeError: handler is broken")}
    seq = failed[0].event_seq
    states = {r.handler.split(".")[-1]: r.state for r in receiver.runs(seq)}
    assert states == {"broken": "failed", "fine": "succeeded"}
    # Fixed and retried by hand: it runs again and succeeds.
    is_broken = False
    receiver.retry(seq, failed[0].handler)
    await asyncio.to_thread(wait_for, lambda: calls["broken"] == 10, 10, "retried run")
    await asyncio.to_thread(
        wait_for, lambda: len(receiver.failed_runs()) == 2, 10, "retried run recorded"
    )
    with pytest.raises(NotFound):
        receiver.retry(seq, failed[0].handler)


def test_registration_refuses_unknown_types_and_name_clashes(receiver: Receiver) -> None:
    with pytest.raises(InvalidInput):
        receiver.on("IDENTITY_DELETED")

    def handler(event: Any) -> None: ...

    receiver.on("VERIFICATION_COMPLETED")(handler)
    with pytest.raises(InvalidInput):
        receiver.on("VERIFICATION_COMPLETED")(handler)
    receiver.on("VERIFICATION_COMPLETED", name="second")(handler)


LIFE = [make_event(C, P, 100), make_event(C, A, 110), make_event(R, A, 120)]
ARRIVALS = sorted(set(itertools.permutations([0, 1, 2, 0, 2])))


async def test_every_arrival_order_converges_through_the_receiver(receiver: Receiver) -> None:
    """All 30 orders of COMPLETED(pending), COMPLETED(approved), REVIEWED(approved) and two
    duplicates, each on its own verification: same final state, on_change only on changes."""
    changes: dict[str, list[tuple[Any, Any]]] = {}
    lock = threading.Lock()

    @receiver.on_change
    def changed(old: Any, new: Any) -> None:
        with lock:
            changes.setdefault(new.key, []).append((old, new))

    await asyncio.to_thread(receiver.start)
    expected_changes = 0
    keys = []
    for order in ARRIVALS:
        key = str(uuid.uuid4())
        keys.append(key)
        events = [make_event(e.event, e.status, e.updated, key=key) for e in LIFE]
        best = -1
        for i in order:
            assert (await receiver.receive(*encrypted(events[i]))).status == 200
            if i > best:
                best, expected_changes = i, expected_changes + 1
        assert receiver.state(key) == VerificationState.from_event(events[2])
        assert len(receiver.history(key)) == 3
    await asyncio.to_thread(
        wait_for,
        lambda: sum(len(v) for v in changes.values()) >= expected_changes,
        15,
        "on_change runs",
    )
    await asyncio.sleep(0.2)
    assert sum(len(v) for v in changes.values()) == expected_changes
    for key in keys:
        for old, new in changes[key]:
            assert old is None or new.order > old.order
        assert max(new.order for _, new in changes[key]) == LIFE_FINAL_ORDER


LIFE_FINAL_ORDER = VerificationState.from_event(LIFE[2]).order


async def test_the_injected_clock_judges_signature_age(sqlite_url: str) -> None:
    signing = SigningSecret.generate()
    then = 1_600_000_000.0
    receiver = Receiver(
        SECRET, signing_secrets=signing, database_url=sqlite_url, clock=lambda: then
    )
    try:
        for sent_at, status in [(int(then) - 60, 200), (int(time.time()), 401)]:
            headers, body = encode_request(
                make_event(updated=sent_at),
                secret=SECRET,
                signing_secrets=[signing],
                msg_id=f"msg_{sent_at}",
                timestamp=sent_at,
            )
            assert (await receiver.receive(headers, body)).status == status
        assert [e.received_at for e in receiver.recent_events()] == [then]
    finally:
        receiver.stop()
