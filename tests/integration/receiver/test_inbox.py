"""The inbox's contract, on SQLite and PostgreSQL both (the ``database`` fixture)."""

from __future__ import annotations

import random
import uuid
from concurrent.futures import Future
from typing import Any

import orjson
import pytest

from verihook.exceptions import NotFound
from verihook.format import EventType, Status, UnknownEvent, WebhookEvent
from verihook.receiver import inbox
from verihook.receiver.reconcile import VerificationState
from verihook.store import Connection, Database, GroupCommitter, migrate
from verihook.store.inbox_schema import INBOX_MIGRATIONS

KEY = "b76e244e-26a3-49ef-9c72-3e599bf0b5f2"
NOW = 1_700_000_000.0


def make_event(
    kind: EventType = EventType.VERIFICATION_COMPLETED,
    status: Status = Status.PENDING,
    updated: int = 100,
    key: str = KEY,
) -> WebhookEvent:
    return WebhookEvent(
        event=kind, key=key, status=status, created=50, updated=updated, processed=updated
    )


@pytest.fixture
def conn(database: Database) -> Any:
    migrate(database, INBOX_MIGRATIONS)
    with database.connection() as c:
        yield c


def store(
    conn: Connection,
    event: WebhookEvent | UnknownEvent,
    webhook_id: str | None = None,
    **kwargs: Any,
) -> inbox.Stored:
    with conn.transaction():
        return inbox.store_event(conn, event, webhook_id, NOW, **kwargs)


def test_a_new_event_is_stored_with_its_state_and_runs(conn: Connection) -> None:
    event = make_event()
    stored = store(conn, event, "msg_1", event_handlers=["a", "b"], change_handlers=["c"])
    assert stored.duplicate is False
    assert stored.old_state is None
    assert stored.new_state == VerificationState.from_event(event)
    assert inbox.get_state(conn, KEY) == VerificationState.from_event(event)
    [row] = inbox.recent_events(conn)
    assert row.to_dict() == {
        "seq": stored.seq,
        "dedup_key": "id:msg_1",
        "webhook_id": "msg_1",
        "event": "VERIFICATION_COMPLETED",
        "key": KEY,
        "status": "pending",
        "payload": orjson.loads(event.to_json()),
        "received_at": NOW,
        "duplicates": 0,
    }
    runs = inbox.runs_for_event(conn, stored.seq)
    assert [(r.handler, r.state, r.attempts) for r in runs] == [
        ("a", "pending", 0),
        ("b", "pending", 0),
        ("c", "pending", 0),
    ]


def test_a_duplicate_webhook_id_is_stored_once_and_enqueues_nothing(conn: Connection) -> None:
    first = store(conn, make_event(), "msg_1", event_handlers=["a"])
    again = store(conn, make_event(), "msg_1", event_handlers=["a"])
    assert again == inbox.Stored(seq=first.seq, duplicate=True)
    [row] = inbox.recent_events(conn)
    assert row.duplicates == 1
    assert len(inbox.runs_for_event(conn, first.seq)) == 1


def test_without_webhook_id_the_fingerprint_deduplicates(conn: Connection) -> None:
    first = store(conn, make_event(), event_handlers=["a"])
    again = store(conn, make_event(), event_handlers=["a"])
    assert again.duplicate and again.seq == first.seq
    assert inbox.recent_events(conn)[0].dedup_key == "sha256:" + make_event().fingerprint
    # A different message id is a different delivery of the same content: stored again.
    other = store(conn, make_event(), "msg_2")
    assert not other.duplicate and other.seq != first.seq


def test_unknown_events_are_stored_without_a_state(conn: Connection) -> None:
    unknown = UnknownEvent("IDENTITY_DELETED", {"event": "IDENTITY_DELETED", "key": KEY})
    stored = store(conn, unknown, event_handlers=["u"])
    assert not stored.duplicate and not stored.changed
    [row] = inbox.recent_events(conn)
    assert (row.event_type, row.verification_key, row.status) == ("IDENTITY_DELETED", KEY, None)
    assert row.payload == {"event": "IDENTITY_DELETED", "key": KEY}
    assert inbox.get_state(conn, KEY) is None
    assert [r.handler for r in inbox.runs_for_event(conn, stored.seq)] == ["u"]


def test_the_state_never_moves_backwards(conn: Connection) -> None:
    reviewed = make_event(EventType.VERIFICATION_REVIEWED, Status.APPROVED, 120)
    store(conn, reviewed, change_handlers=["c"])
    late = store(
        conn,
        make_event(EventType.VERIFICATION_COMPLETED, Status.APPROVED, 110),
        change_handlers=["c"],
    )
    assert late.old_state == VerificationState.from_event(reviewed)
    assert late.new_state is None
    assert inbox.runs_for_event(conn, late.seq) == []
    assert inbox.get_state(conn, KEY) == VerificationState.from_event(reviewed)
    assert [e.status for e in inbox.event_history(conn, KEY)] == ["approved", "approved"]


def test_a_change_enqueues_change_handlers_with_old_and_new(conn: Connection) -> None:
    pending = make_event()
    store(conn, pending)
    approved = make_event(status=Status.APPROVED, updated=110)
    stored = store(conn, approved, change_handlers=["c"])
    assert stored.old_state == VerificationState.from_event(pending)
    [claimed] = inbox_claim(conn)
    assert claimed.handler == "c"
    assert claimed.argument is not None
    assert orjson.loads(claimed.argument) == {
        "old": VerificationState.from_event(pending).to_dict(),
        "new": VerificationState.from_event(approved).to_dict(),
    }
    assert orjson.loads(claimed.payload) == orjson.loads(approved.to_json())


def inbox_claim(conn: Connection, now: float = NOW, lease: float = 30.0) -> list[inbox.ClaimedRun]:
    with conn.transaction():
        return inbox.claim_due_runs(conn, now, 10, lease)


def test_claim_lease_finish_retry_and_fail(conn: Connection) -> None:
    stored = store(conn, make_event(), event_handlers=["a", "b"])
    claimed = inbox_claim(conn)
    assert sorted((c.handler, c.attempts) for c in claimed) == [("a", 1), ("b", 1)]
    # Claimed runs are leased: not due again until the lease runs out.
    assert inbox_claim(conn, NOW + 29) == []
    assert inbox.next_due_at(conn) == NOW + 30
    with conn.transaction():
        inbox.finish_run(conn, stored.seq, "a", NOW + 1)
        inbox.schedule_retry(conn, stored.seq, "b", "boom", NOW + 5, NOW + 1)
    [again] = inbox_claim(conn, NOW + 5)
    assert (again.handler, again.attempts) == ("b", 2)
    with conn.transaction():
        inbox.schedule_retry(conn, stored.seq, "b", "RuntimeError: still boom", None, NOW + 6)
    assert inbox_claim(conn, NOW + 1000) == []
    assert inbox.next_due_at(conn) is None
    [failed] = inbox.failed_runs(conn)
    assert failed.to_dict() == {
        "event_seq": stored.seq,
        "handler": "b",
        "state": "failed",
        "attempts": 2,
        "next_run_at": NOW + 35,  # the lease of the last claim
        "last_error": "RuntimeError: still boom",
        "updated_at": NOW + 6,
    }
    states = {r.handler: r.state for r in inbox.runs_for_event(conn, stored.seq)}
    assert states == {"a": "succeeded", "b": "failed"}
    with conn.transaction():
        inbox.retry_run(conn, stored.seq, "b", NOW + 7)
    assert inbox.failed_runs(conn) == []
    [retried] = inbox_claim(conn, NOW + 7)
    assert (retried.handler, retried.attempts) == ("b", 1)


def test_retrying_what_did_not_fail_is_refused(conn: Connection) -> None:
    stored = store(conn, make_event(), event_handlers=["a"])
    with pytest.raises(NotFound), conn.transaction():
        inbox.retry_run(conn, stored.seq, "a", NOW)
    with pytest.raises(NotFound), conn.transaction():
        inbox.retry_run(conn, 999_999, "a", NOW)


def test_recent_events_newest_first_with_a_limit(conn: Connection) -> None:
    keys = [str(uuid.UUID(int=i)) for i in range(5)]
    for k in keys:
        store(conn, make_event(key=k))
    assert [e.verification_key for e in inbox.recent_events(conn, limit=3)] == keys[::-1][:3]
    assert inbox.get_event(conn, 999_999) is None


def test_concurrent_writers_share_commits_and_store_each_event_once(database: Database) -> None:
    migrate(database, INBOX_MIGRATIONS)
    committer = GroupCommitter(database)
    try:
        events = [make_event(updated=100 + i % 50) for i in range(200)]

        def job(event: WebhookEvent, msg: str) -> Any:
            return lambda c: inbox.store_event(c, event, msg, NOW, change_handlers=["c"])

        futures: list[Future[inbox.Stored]] = [
            committer.submit(job(e, f"msg_{i % 100}")) for i, e in enumerate(events)
        ]
        results = [f.result(timeout=30) for f in futures]
    finally:
        committer.close()
    assert sum(not r.duplicate for r in results) == 100
    with database.connection() as c:
        assert len(inbox.recent_events(c, limit=1000)) == 100
        final = inbox.get_state(c, KEY)
    assert final is not None and final.updated == 149


def _shuffled_life(rng: random.Random, keys: list[str]) -> list[tuple[WebhookEvent, str | None]]:
    items = []
    for _ in range(40):
        kind = rng.choice([EventType.VERIFICATION_COMPLETED, EventType.VERIFICATION_REVIEWED])
        status = (
            Status.APPROVED
            if kind is EventType.VERIFICATION_REVIEWED
            else rng.choice([Status.PENDING, Status.APPROVED])
        )
        event = make_event(kind, status, rng.choice([100, 110, 120]), key=rng.choice(keys))
        items.append((event, rng.choice([None, None, "m1", "m2", f"m{rng.randrange(99)}"])))
    return items


def test_a_batch_stores_exactly_as_one_by_one(conn: Connection) -> None:
    rng = random.Random(5)
    for _ in range(5):
        keys = [str(uuid.uuid4()) for _ in range(3)]
        twin = {k: str(uuid.uuid4()) for k in keys}
        items = _shuffled_life(rng, keys)
        with conn.transaction():
            batch = inbox.store_events(
                conn,
                [inbox.Incoming(e, m and "b" + m, ["h"], ["c"]) for e, m in items],
                NOW,
            )
        one_by_one = []
        for event, msg in items:
            copy = make_event(event.event, event.status, event.updated, key=twin[event.key])
            one_by_one.append(
                store(conn, copy, msg and "s" + msg, event_handlers=["h"], change_handlers=["c"])
            )

        def shape(stored: inbox.Stored, rename: dict[str, str]) -> tuple[Any, ...]:
            def plain(state: VerificationState | None) -> Any:
                return None if state is None else {**state.to_dict(), "key": rename[state.key]}

            runs = [(r.handler, r.state) for r in inbox.runs_for_event(conn, stored.seq)]
            return stored.duplicate, plain(stored.old_state), plain(stored.new_state), runs

        back = {v: k for k, v in twin.items()}
        same = {k: k for k in keys}
        assert [shape(s, same) for s in batch] == [shape(s, back) for s in one_by_one]
        for key in keys:
            mine, theirs = inbox.get_state(conn, key), inbox.get_state(conn, twin[key])
            assert mine is not None and theirs is not None
            assert mine.order == theirs.order


def test_unknown_event_names_and_keys_with_nul_are_stored(conn: Connection) -> None:
    payload = {"event": "ODD\x00NAME", "key": "k\x00"}
    stored = store(conn, UnknownEvent("ODD\x00NAME", payload))
    [row] = inbox.recent_events(conn)
    assert (row.seq, row.event_type, row.verification_key) == (stored.seq, "ODD\ufffdNAME", None)
    assert row.payload == payload


def test_deduplication_is_per_verification(conn: Connection) -> None:
    """A webhook-id names one message, which is about one verification: the same id on
    another verification is another event (one index then serves dedup and history)."""
    other = "00000000-0000-4000-8000-000000000000"
    first = store(conn, make_event(), "msg_1")
    second = store(conn, make_event(key=other), "msg_1")
    assert not first.duplicate and not second.duplicate
    assert store(conn, make_event(key=other), "msg_1").duplicate
    assert [e.seq for e in inbox.event_history(conn, other)] == [second.seq]
    assert inbox.event_history(conn, "") == []
