"""Inbox operations on SQLite and PostgreSQL: retry every failed run, prune old events."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from receiver_factories import KEY, SECRET, encrypted, make_event, wait_for

from verihook import Receiver
from verihook.exceptions import InvalidInput
from verihook.format import EventType, Status
from verihook.receiver import HandlerRetry, inbox
from verihook.receiver.reconcile import VerificationState
from verihook.store import Connection, Database, migrate
from verihook.store.inbox_schema import INBOX_MIGRATIONS

NOW = 1_700_000_000.0
DAY = 86400.0
OTHER = "0f3c1e9a-5b7d-4c2e-9a8b-6d5e4f3a2b1c"


@pytest.fixture
def conn(database: Database) -> Iterator[Connection]:
    migrate(database, INBOX_MIGRATIONS)
    with database.connection() as c:
        yield c


def store(conn: Connection, updated: int, at: float, handlers: list[str], key: str = KEY) -> int:
    with conn.transaction():
        incoming = inbox.Incoming(make_event(updated=updated, key=key), None, handlers)
        return inbox.store_events(conn, [incoming], at)[0].seq


def fail_for_good(conn: Connection, seq: int, handler: str) -> None:
    with conn.transaction():
        inbox.schedule_retry(conn, seq, handler, "boom", None, NOW)


def succeed(conn: Connection, seq: int, handler: str) -> None:
    with conn.transaction():
        inbox.finish_run(conn, seq, handler, NOW)


def seqs(conn: Connection) -> list[int]:
    return sorted(e.seq for e in inbox.recent_events(conn, 1000))


def run_rows(conn: Connection) -> list[tuple[Any, ...]]:
    return sorted(
        (int(seq), handler, state)
        for seq, handler, state in conn.execute(
            "SELECT event_seq, handler, state FROM verihook_inbox_runs"
        )
    )


def prune(conn: Connection, before: float, include_failed: bool = False) -> int:
    with conn.transaction():
        return inbox.prune_events(conn, before, include_failed)


def test_prune_deletes_old_finished_events_with_their_runs_and_keeps_the_rest(
    conn: Connection,
) -> None:
    old = NOW - 40 * DAY
    store(conn, 101, old, [])  # no handlers: nothing left to run
    succeeded = store(conn, 102, old, ["a", "b"])
    half_done = store(conn, 103, old, ["a", "b"])  # one run still pending
    failed = store(conn, 104, old, ["a", "b"])
    young = store(conn, 105, NOW - DAY, ["a"])
    for seq, handler in [(succeeded, "a"), (succeeded, "b"), (half_done, "a"), (failed, "a")]:
        succeed(conn, seq, handler)
    fail_for_good(conn, failed, "b")
    succeed(conn, young, "a")
    state = inbox.get_state(conn, KEY)

    assert prune(conn, NOW - 30 * DAY) == 2
    assert seqs(conn) == [half_done, failed, young]
    assert run_rows(conn) == [
        (half_done, "a", "succeeded"),
        (half_done, "b", "pending"),
        (failed, "a", "succeeded"),
        (failed, "b", "failed"),
        (young, "a", "succeeded"),
    ]
    # The reconciled state is the state, not history: it stays.
    assert inbox.get_state(conn, KEY) == state is not None
    assert prune(conn, NOW - 30 * DAY) == 0


def test_prune_with_failed_runs_included_still_keeps_pending_ones(conn: Connection) -> None:
    old = NOW - 40 * DAY
    failed = store(conn, 101, old, ["a"])
    pending = store(conn, 102, old, ["a"])
    fail_for_good(conn, failed, "a")
    assert prune(conn, NOW - 30 * DAY, include_failed=True) == 1
    assert seqs(conn) == [pending]
    assert run_rows(conn) == [(pending, "a", "pending")]


def test_prune_counts_events_not_runs_and_is_exact_at_the_boundary(conn: Connection) -> None:
    before = NOW - 30 * DAY
    at_boundary = store(conn, 101, before, ["a"])
    just_older = [store(conn, 102 + i, before - 1, ["a", "b", "c"]) for i in range(3)]
    for seq in just_older:
        for handler in "abc":
            succeed(conn, seq, handler)
    succeed(conn, at_boundary, "a")
    assert prune(conn, before) == 3  # "older than": received strictly before
    assert seqs(conn) == [at_boundary]


def test_retry_failed_runs_requeues_every_failed_run_and_only_those(conn: Connection) -> None:
    first = store(conn, 101, NOW, ["a", "b"])
    second = store(conn, 102, NOW, ["a"])
    fail_for_good(conn, first, "a")
    fail_for_good(conn, second, "a")
    succeed(conn, first, "b")
    with conn.transaction():
        assert inbox.retry_failed_runs(conn, NOW + 5) == 2
    runs = {
        (r.event_seq, r.handler): r for s in (first, second) for r in inbox.runs_for_event(conn, s)
    }
    assert [(k, r.state, r.attempts, r.next_run_at) for k, r in sorted(runs.items())] == [
        ((first, "a"), "pending", 0, NOW + 5),
        ((first, "b"), "succeeded", 0, NOW),
        ((second, "a"), "pending", 0, NOW + 5),
    ]
    with conn.transaction():
        assert inbox.retry_failed_runs(conn, NOW + 6) == 0


# --- through the Receiver ---------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def all_runs_succeeded(receiver: Receiver, expected: int) -> bool:
    runs = [r for e in receiver.recent_events() for r in receiver.runs(e.seq)]
    return len(runs) == expected and all(r.state == "succeeded" for r in runs)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def receiver(database_url: str, clock: Clock) -> Iterator[Receiver]:
    r = Receiver(
        SECRET,
        database_url=database_url,
        clock=clock,
        retry=HandlerRetry(max_attempts=1),
    )
    yield r
    r.stop()


def test_a_pruned_event_delivered_again_changes_no_state_and_fires_no_on_change(
    receiver: Receiver, clock: Clock
) -> None:
    handled: list[str] = []
    changes: list[tuple[Any, Any]] = []
    receiver.on("VERIFICATION_REVIEWED")(lambda event: handled.append(event.key))
    receiver.on_change(lambda old, new: changes.append((old, new)))
    receiver.start()
    completed = encrypted(make_event(), "msg_1")
    reviewed = encrypted(make_event(EventType.VERIFICATION_REVIEWED, Status.APPROVED, 200), "msg_2")
    for request in (completed, reviewed):
        assert receiver.receive_sync(*request).status == 200
    wait_for(lambda: all_runs_succeeded(receiver, 3), what="the handlers")
    assert (len(handled), len(changes)) == (1, 2)
    state = receiver.state(KEY)
    assert state is not None and state.status == Status.APPROVED

    clock.now += 31 * DAY
    assert receiver.prune(30 * DAY) == 2
    assert receiver.history(KEY) == []
    assert receiver.state(KEY) == state

    # Both arrive again, the older one last: each is stored as new (its identity was pruned)
    # but neither moves the state, so on_change stays quiet; the event handler runs again.
    for request in (reviewed, completed):
        reply = receiver.receive_sync(*request)
        assert reply.body == b'{"status":"stored"}'
    wait_for(lambda: len(handled) == 2, what="the event handler, again")
    assert receiver.state(KEY) == state
    assert len(changes) == 2
    assert [e.status for e in receiver.history(KEY)] == ["approved", "pending"]
    # Only the event handler's run was enqueued: no state change, no on_change run.
    runs = [run.handler for e in receiver.history(KEY) for run in receiver.runs(e.seq)]
    assert runs == receiver.handlers.for_event(
        make_event(EventType.VERIFICATION_REVIEWED, Status.APPROVED)
    )


def test_prune_keeps_failed_runs_unless_asked_and_keeps_young_events(
    receiver: Receiver, clock: Clock
) -> None:
    @receiver.on("VERIFICATION_COMPLETED")
    def broken(event: Any) -> None:
        raise RuntimeError("integrator down")

    receiver.start()
    assert receiver.receive_sync(*encrypted(make_event())).status == 200
    wait_for(receiver.failed_runs, what="the run to fail for good")
    clock.now += 2 * DAY
    assert receiver.receive_sync(*encrypted(make_event(key=OTHER))).status == 200
    wait_for(lambda: len(receiver.failed_runs()) == 2, what="the second run to fail")

    assert receiver.prune(DAY) == 0
    assert receiver.prune(DAY, include_failed=True) == 1
    assert [e.verification_key for e in receiver.recent_events()] == [OTHER]
    assert [r.event_seq for r in receiver.failed_runs()] == [receiver.recent_events()[0].seq]
    assert receiver.state(KEY) == VerificationState.from_event(make_event())


@pytest.mark.parametrize("seconds", [-1.0, float("nan")])
def test_prune_refuses_a_negative_age(receiver: Receiver, seconds: float) -> None:
    with pytest.raises(InvalidInput):
        receiver.prune(seconds)


def test_retry_all_failed_through_the_receiver_runs_them_again(receiver: Receiver) -> None:
    attempts: list[str] = []

    @receiver.on("VERIFICATION_COMPLETED")
    def flaky(event: Any) -> None:
        attempts.append(event.key)
        if len(attempts) <= 2:
            raise RuntimeError("not yet")

    receiver.start()
    for key in (KEY, OTHER):
        assert receiver.receive_sync(*encrypted(make_event(key=key))).status == 200
    wait_for(lambda: len(receiver.failed_runs()) == 2, what="both runs to fail")
    assert receiver.retry_all_failed() == 2
    wait_for(lambda: len(attempts) == 4, what="both runs again")
    wait_for(lambda: all_runs_succeeded(receiver, 2), what="both runs to succeed")
    assert receiver.retry_all_failed() == 0


def test_a_retry_from_another_process_is_picked_up_by_polling(database_url: str) -> None:
    """The dispatcher is only woken by its own Receiver; another process's retry (the CLI)
    changes the store alone, and the dispatcher must find it by polling."""
    attempts: list[float] = []
    running = Receiver(SECRET, database_url=database_url, retry=HandlerRetry(max_attempts=1))
    elsewhere = Receiver(SECRET, database_url=database_url)  # no dispatcher, no wake-up
    try:

        @running.on("VERIFICATION_COMPLETED", name="flaky")
        def flaky(event: Any) -> None:
            attempts.append(time.monotonic())
            if len(attempts) == 1:
                raise RuntimeError("first time")

        running.start()
        assert running.receive_sync(*encrypted(make_event())).status == 200
        [failed] = wait_for(running.failed_runs, what="the run to fail")
        retried_at = time.monotonic()
        elsewhere.retry(failed.event_seq, "flaky")
        wait_for(lambda: len(attempts) == 2, timeout=5, what="the dispatcher's next poll")
        assert attempts[1] - retried_at < 3.0
        wait_for(lambda: running.runs(failed.event_seq)[0].state == "succeeded")
    finally:
        elsewhere.stop()
        running.stop()
