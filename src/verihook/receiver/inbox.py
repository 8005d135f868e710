"""The durable inbox's SQL: store an event with its state and handler runs, and the queries.

Every function takes an open ``Connection``; writes expect to run inside a transaction (the
receiver submits them through a ``GroupCommitter``). SQL is written once for both dialects.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from verihook.exceptions import NotFound
from verihook.format import UnknownEvent, WebhookEvent
from verihook.receiver.reconcile import VerificationState, reconcile
from verihook.store import Connection

__all__ = [
    "ClaimedRun",
    "HandlerRun",
    "InboxEvent",
    "Stored",
    "claim_due_runs",
    "dedup_key",
    "event_history",
    "failed_runs",
    "finish_run",
    "get_event",
    "get_state",
    "next_due_at",
    "recent_events",
    "retry_run",
    "runs_for_event",
    "schedule_retry",
    "store_event",
]

PENDING, SUCCEEDED, FAILED = "pending", "succeeded", "failed"


@dataclass(frozen=True, slots=True)
class Stored:
    """The outcome of storing one received event."""

    seq: int
    duplicate: bool
    old_state: VerificationState | None = None
    new_state: VerificationState | None = None

    @property
    def changed(self) -> bool:
        return self.new_state is not None


@dataclass(frozen=True, slots=True)
class InboxEvent:
    seq: int
    dedup_key: str
    webhook_id: str | None
    event_type: str
    verification_key: str | None
    status: str | None
    payload: dict[str, Any]
    received_at: float
    duplicates: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "dedup_key": self.dedup_key,
            "webhook_id": self.webhook_id,
            "event": self.event_type,
            "key": self.verification_key,
            "status": self.status,
            "payload": self.payload,
            "received_at": self.received_at,
            "duplicates": self.duplicates,
        }


@dataclass(frozen=True, slots=True)
class HandlerRun:
    event_seq: int
    handler: str
    state: str
    attempts: int
    next_run_at: float
    last_error: str | None
    updated_at: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "event_seq": self.event_seq,
            "handler": self.handler,
            "state": self.state,
            "attempts": self.attempts,
            "next_run_at": self.next_run_at,
            "last_error": self.last_error,
            "updated_at": self.updated_at,
        }


@dataclass(frozen=True, slots=True)
class ClaimedRun:
    """A run taken by a dispatcher: ``attempts`` already counts this attempt."""

    event_seq: int
    handler: str
    attempts: int
    payload: bytes
    argument: bytes | None


def dedup_key(event: WebhookEvent | UnknownEvent, webhook_id: str | None) -> str:
    """The sender's message id when it gives one, else the hash of the canonical event."""
    if webhook_id:
        return "id:" + webhook_id
    return "sha256:" + event.fingerprint


# --- writes -------------------------------------------------------------------------------

_INSERT_EVENT = (
    "INSERT INTO verihook_inbox_events (dedup_key, webhook_id, event_type, verification_key,"
    " status, payload, received_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (dedup_key) DO NOTHING RETURNING seq"
)
_INSERT_STATE = (
    "INSERT INTO verihook_inbox_states (key, event_type, status, created, updated, processed,"
    " event_seq, changed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (key) DO NOTHING RETURNING key"
)
_SELECT_STATE = (
    "SELECT key, event_type, status, created, updated, processed"
    " FROM verihook_inbox_states WHERE key = ?"
)
_UPDATE_STATE = (
    "UPDATE verihook_inbox_states SET event_type = ?, status = ?, created = ?, updated = ?,"
    " processed = ?, event_seq = ?, changed_at = ? WHERE key = ?"
)
_INSERT_RUN = (
    "INSERT INTO verihook_inbox_runs (event_seq, handler, argument, state, attempts,"
    " next_run_at, updated_at) VALUES (?, ?, ?, 'pending', 0, ?, ?)"
)


def store_event(
    conn: Connection,
    event: WebhookEvent | UnknownEvent,
    webhook_id: str | None,
    now: float,
    event_handlers: Sequence[str] = (),
    change_handlers: Sequence[str] = (),
) -> Stored:
    """Insert the event unless known, move the reconciled state forward, enqueue handler runs.

    A duplicate changes nothing and enqueues nothing: handlers run once per distinct event.
    ``change_handlers`` are enqueued only when the state really changed.
    """
    key = dedup_key(event, webhook_id)
    if isinstance(event, WebhookEvent):
        event_type, status = event.event.value, event.status.value
    else:
        event_type, status = event.event, None
    row = conn.one(
        _INSERT_EVENT,
        (
            key,
            webhook_id,
            event_type,
            event.key,
            status,
            event.to_json().decode("utf-8"),
            now,
        ),
    )
    if row is None:
        conn.execute(
            "UPDATE verihook_inbox_events SET duplicates = duplicates + 1 WHERE dedup_key = ?",
            (key,),
        )
        seq = conn.scalar("SELECT seq FROM verihook_inbox_events WHERE dedup_key = ?", (key,))
        return Stored(seq=int(seq), duplicate=True)
    seq = int(row[0])
    old: VerificationState | None = None
    new: VerificationState | None = None
    if isinstance(event, WebhookEvent):
        old, new = _advance_state(conn, event, seq, now)
    runs: list[tuple[Any, ...]] = [(seq, name, None, now, now) for name in event_handlers]
    if new is not None and change_handlers:
        argument = orjson.dumps(
            {"old": None if old is None else old.to_dict(), "new": new.to_dict()}
        ).decode("utf-8")
        runs.extend((seq, name, argument, now, now) for name in change_handlers)
    if runs:
        conn.executemany(_INSERT_RUN, runs)
    return Stored(seq=seq, duplicate=False, old_state=old, new_state=new)


def _advance_state(
    conn: Connection, event: WebhookEvent, seq: int, now: float
) -> tuple[VerificationState | None, VerificationState | None]:
    # Insert-if-absent first: on PostgreSQL a concurrent inserter makes this wait for its
    # commit, and the row is then locked for our read-modify-write below (SQLite has one
    # writer anyway), so two processes can never both move the same state.
    values = (event.event.value, event.status.value, event.created, event.updated)
    inserted = conn.one(_INSERT_STATE, (event.key, *values, event.processed, seq, now))
    if inserted is not None:
        return None, VerificationState.from_event(event)
    select = _SELECT_STATE + (" FOR UPDATE" if conn.dialect == "postgres" else "")
    current = _state_from_row(conn.one(select, (event.key,)))
    new = reconcile(current, event)
    if new is None:
        return current, None
    conn.execute(_UPDATE_STATE, (*values, event.processed, seq, now, event.key))
    return current, new


def claim_due_runs(conn: Connection, now: float, limit: int, lease: float) -> list[ClaimedRun]:
    """Take up to ``limit`` due runs; each is due again after ``lease`` if never finished.

    The lease is what makes a crash harmless: a run claimed by a process that died runs
    again once it expires (at least once).
    """
    sql = (
        "SELECT r.event_seq, r.handler, r.attempts, e.payload, r.argument"
        " FROM verihook_inbox_runs r JOIN verihook_inbox_events e ON e.seq = r.event_seq"
        " WHERE r.state = 'pending' AND r.next_run_at <= ? ORDER BY r.next_run_at LIMIT ?"
    )
    if conn.dialect == "postgres":
        sql += " FOR UPDATE OF r SKIP LOCKED"
    rows = conn.execute(sql, (now, limit))
    if not rows:
        return []
    conn.executemany(
        "UPDATE verihook_inbox_runs SET attempts = attempts + 1, next_run_at = ?, updated_at = ?"
        " WHERE event_seq = ? AND handler = ?",
        [(now + lease, now, seq, handler) for seq, handler, *_ in rows],
    )
    return [
        ClaimedRun(
            event_seq=int(seq),
            handler=handler,
            attempts=int(attempts) + 1,
            payload=payload.encode("utf-8"),
            argument=None if argument is None else argument.encode("utf-8"),
        )
        for seq, handler, attempts, payload, argument in rows
    ]


def finish_run(conn: Connection, event_seq: int, handler: str, now: float) -> None:
    conn.execute(
        "UPDATE verihook_inbox_runs SET state = 'succeeded', last_error = NULL, updated_at = ?"
        " WHERE event_seq = ? AND handler = ?",
        (now, event_seq, handler),
    )


def schedule_retry(
    conn: Connection,
    event_seq: int,
    handler: str,
    error: str,
    next_run_at: float | None,
    now: float,
) -> None:
    """Record a failed attempt: due again at ``next_run_at``, or failed for good when None."""
    if next_run_at is None:
        conn.execute(
            "UPDATE verihook_inbox_runs SET state = 'failed', last_error = ?, updated_at = ?"
            " WHERE event_seq = ? AND handler = ?",
            (error, now, event_seq, handler),
        )
    else:
        conn.execute(
            "UPDATE verihook_inbox_runs SET last_error = ?, next_run_at = ?, updated_at = ?"
            " WHERE event_seq = ? AND handler = ?",
            (error, next_run_at, now, event_seq, handler),
        )


def retry_run(conn: Connection, event_seq: int, handler: str, now: float) -> None:
    """Put a failed run back in the queue, due now, with a fresh count of attempts."""
    changed = conn.rowcount(
        "UPDATE verihook_inbox_runs SET state = 'pending', attempts = 0, next_run_at = ?,"
        " updated_at = ? WHERE event_seq = ? AND handler = ? AND state = 'failed'",
        (now, now, event_seq, handler),
    )
    if not changed:
        raise NotFound(f"no failed run of handler {handler!r} for event {event_seq}")


# --- reads --------------------------------------------------------------------------------

_EVENT_COLUMNS = (
    "seq, dedup_key, webhook_id, event_type, verification_key, status, payload, received_at,"
    " duplicates"
)
_RUN_COLUMNS = "event_seq, handler, state, attempts, next_run_at, last_error, updated_at"


def recent_events(conn: Connection, limit: int = 50) -> list[InboxEvent]:
    """The latest events first."""
    rows = conn.execute(
        f"SELECT {_EVENT_COLUMNS} FROM verihook_inbox_events ORDER BY seq DESC LIMIT ?",
        (limit,),
    )
    return [_event_from_row(row) for row in rows]


def get_event(conn: Connection, seq: int) -> InboxEvent | None:
    row = conn.one(f"SELECT {_EVENT_COLUMNS} FROM verihook_inbox_events WHERE seq = ?", (seq,))
    return None if row is None else _event_from_row(row)


def event_history(conn: Connection, key: str) -> list[InboxEvent]:
    """Every event received for one verification, in arrival order."""
    rows = conn.execute(
        f"SELECT {_EVENT_COLUMNS} FROM verihook_inbox_events WHERE verification_key = ?"
        " ORDER BY seq",
        (key,),
    )
    return [_event_from_row(row) for row in rows]


def get_state(conn: Connection, key: str) -> VerificationState | None:
    return _state_from_row(conn.one(_SELECT_STATE, (key,)))


def failed_runs(conn: Connection, limit: int = 100) -> list[HandlerRun]:
    """Runs that gave up, the latest failure first."""
    rows = conn.execute(
        f"SELECT {_RUN_COLUMNS} FROM verihook_inbox_runs WHERE state = 'failed'"
        " ORDER BY updated_at DESC, event_seq DESC LIMIT ?",
        (limit,),
    )
    return [_run_from_row(row) for row in rows]


def runs_for_event(conn: Connection, event_seq: int) -> list[HandlerRun]:
    rows = conn.execute(
        f"SELECT {_RUN_COLUMNS} FROM verihook_inbox_runs WHERE event_seq = ? ORDER BY handler",
        (event_seq,),
    )
    return [_run_from_row(row) for row in rows]


def next_due_at(conn: Connection) -> float | None:
    """When the earliest pending run is due, or None when nothing is pending."""
    value = conn.scalar("SELECT MIN(next_run_at) FROM verihook_inbox_runs WHERE state = 'pending'")
    return None if value is None else float(value)


def _event_from_row(row: tuple[Any, ...]) -> InboxEvent:
    seq, key, webhook_id, event_type, vkey, status, payload, received_at, duplicates = row
    return InboxEvent(
        seq=int(seq),
        dedup_key=key,
        webhook_id=webhook_id,
        event_type=event_type,
        verification_key=vkey,
        status=status,
        payload=orjson.loads(payload),
        received_at=float(received_at),
        duplicates=int(duplicates),
    )


def _run_from_row(row: tuple[Any, ...]) -> HandlerRun:
    seq, handler, state, attempts, next_run_at, last_error, updated_at = row
    return HandlerRun(
        event_seq=int(seq),
        handler=handler,
        state=state,
        attempts=int(attempts),
        next_run_at=float(next_run_at),
        last_error=last_error,
        updated_at=float(updated_at),
    )


def _state_from_row(row: tuple[Any, ...] | None) -> VerificationState | None:
    if row is None:
        return None
    key, event_type, status, created, updated, processed = row
    return VerificationState.from_dict(
        {
            "key": key,
            "event": event_type,
            "status": status,
            "created": created,
            "updated": updated,
            "processed": processed,
        }
    )
