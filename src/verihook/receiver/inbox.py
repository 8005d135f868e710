"""The durable inbox's SQL: store an event with its state and handler runs, and the queries.

Every function takes an open ``Connection``; writes expect to run inside a transaction (the
receiver submits them through a ``GroupCommitter``). SQL is written once for both dialects.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from hashlib import sha256
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
    "Incoming",
    "Stored",
    "claim_due_runs",
    "dedup_key",
    "event_history",
    "failed_runs",
    "finish_run",
    "get_event",
    "get_state",
    "next_due_at",
    "prune_events",
    "recent_events",
    "retry_failed_runs",
    "retry_run",
    "runs_for_event",
    "schedule_retry",
    "store_event",
    "store_events",
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
    """The sender's message id when it gives one, else the hash of the canonical event.

    Unique per verification: the store's identity of an event is (its verification key,
    this), so one index serves deduplication and a verification's history alike.

    (``store_events`` computes the same inline, hashing the payload it stores anyway.)
    """
    if webhook_id:
        return "id:" + webhook_id
    return "sha256:" + event.fingerprint


# --- writes -------------------------------------------------------------------------------

_EVENT_COLUMNS_INSERT = (
    "INSERT INTO verihook_inbox_events (dedup_key, webhook_id, event_type, verification_key,"
    " status, payload, received_at) VALUES "
)
_STATE_COLUMNS_INSERT = (
    "INSERT INTO verihook_inbox_states (key, event_type, status, created, updated, processed,"
    " event_seq, changed_at) VALUES "
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
# Rows per multi-row statement: well under SQLite's 32,766 bound variables.
_CHUNK = 400
# An event's identity in the store: (verification key or "", dedup key).
_Ident = tuple[str, str]


@dataclass(frozen=True, slots=True)
class Incoming:
    """One received event to store, with the handler runs it asks for."""

    event: WebhookEvent | UnknownEvent
    webhook_id: str | None = None
    event_handlers: Sequence[str] = ()
    change_handlers: Sequence[str] = ()


def store_event(
    conn: Connection,
    event: WebhookEvent | UnknownEvent,
    webhook_id: str | None,
    now: float,
    event_handlers: Sequence[str] = (),
    change_handlers: Sequence[str] = (),
) -> Stored:
    """``store_events`` for one event."""
    incoming = Incoming(event, webhook_id, event_handlers, change_handlers)
    return store_events(conn, [incoming], now)[0]


def store_events(conn: Connection, items: Sequence[Incoming], now: float) -> list[Stored]:
    """Insert each event unless known, move reconciled states forward, enqueue handler runs.

    The batch behaves exactly as the events stored one by one in order: a duplicate (of the
    store or of an earlier item) changes nothing and enqueues nothing, so handlers run once
    per distinct event; ``change_handlers`` are enqueued only when the state really changed.
    A few multi-row statements serve the whole batch: this is the receiver's hot path.
    """
    payloads = [item.event.to_json() for item in items]
    rows = [
        _event_row(
            item,
            "id:" + item.webhook_id if item.webhook_id else "sha256:" + sha256(payload).hexdigest(),
            payload.decode("utf-8"),
            now,
        )
        for item, payload in zip(items, payloads, strict=True)
    ]
    keys: list[_Ident] = [(row[3], row[0]) for row in rows]
    first: dict[_Ident, int] = {}
    for index, key in enumerate(keys):
        first.setdefault(key, index)
    rows = [rows[index] for index in first.values()]
    seqs = _insert_events(conn, rows)
    new = [index for index, key in enumerate(keys) if key in seqs and first[key] == index]
    results: list[Stored | None] = [None] * len(items)
    _store_duplicates(conn, keys, new, seqs, results)
    changes = _advance_states(conn, items, new, keys, seqs, now)
    runs: list[tuple[Any, ...]] = []
    for index in new:
        item, seq = items[index], seqs[keys[index]]
        old, state = changes.get(index, (None, None))
        runs.extend((seq, name, None, now, now) for name in item.event_handlers)
        if state is not None and item.change_handlers:
            argument = orjson.dumps(
                {"old": None if old is None else old.to_dict(), "new": state.to_dict()}
            ).decode("utf-8")
            runs.extend((seq, name, argument, now, now) for name in item.change_handlers)
        results[index] = Stored(seq=seq, duplicate=False, old_state=old, new_state=state)
    if runs:
        conn.executemany(_INSERT_RUN, runs)
    return [r for r in results if r is not None]


def _event_row(item: Incoming, key: str, payload: str, now: float) -> tuple[Any, ...]:
    """The insert's values; [0] is the dedup key and [3] its scope, the verification key."""
    event = item.event
    if isinstance(event, WebhookEvent):
        return (
            key,
            item.webhook_id,
            event.event.value,
            event.key,
            event.status.value,
            payload,
            now,
        )
    # An unknown event's name and key are whatever the sender wrote; PostgreSQL text cannot
    # hold NUL, and the columns are for lookups, so keep them plain (the payload keeps all).
    name = event.event.replace("\x00", "\ufffd")[:200]
    vkey = event.key or ""
    if "\x00" in vkey or len(vkey) > 200:
        vkey = ""
    return (key, item.webhook_id, name, vkey, None, payload, now)


def _store_duplicates(
    conn: Connection,
    keys: list[_Ident],
    new: list[int],
    seqs: dict[_Ident, int],
    results: list[Stored | None],
) -> None:
    fresh = set(new)
    duplicates = [index for index in range(len(keys)) if index not in fresh]
    if not duplicates:
        return
    conn.executemany(
        "UPDATE verihook_inbox_events SET duplicates = duplicates + 1"
        " WHERE verification_key = ? AND dedup_key = ?",
        [keys[index] for index in duplicates],
    )
    known = dict(seqs)
    for key in {keys[index] for index in duplicates} - known.keys():
        known[key] = int(
            conn.scalar(
                "SELECT seq FROM verihook_inbox_events"
                " WHERE verification_key = ? AND dedup_key = ?",
                key,
            )
        )
    for index in duplicates:
        results[index] = Stored(seq=known[keys[index]], duplicate=True)


def _advance_states(
    conn: Connection,
    items: Sequence[Incoming],
    new: list[int],
    keys: list[_Ident],
    seqs: dict[_Ident, int],
    now: float,
) -> dict[int, tuple[VerificationState | None, VerificationState | None]]:
    """Fold the new known events into their verifications' states, in arrival order.

    Returns (old, new) per item index; new is None when the item changed nothing.
    """
    known = [i for i in new if isinstance(items[i].event, WebhookEvent)]
    if not known:
        return {}
    events = {i: e for i in known if isinstance(e := items[i].event, WebhookEvent)}
    # Insert-if-absent first: on PostgreSQL a concurrent inserter makes this wait for its
    # commit, and existing rows are locked by the SELECT ... FOR UPDATE below (SQLite has
    # one writer anyway), so two processes can never both move the same state.
    firsts: dict[str, int] = {}
    for i in known:
        firsts.setdefault(events[i].key, i)
    rows = [(*_state_values(events[i]), seqs[keys[i]], now) for i in firsts.values()]
    if conn.dialect == "sqlite":
        # One writer holds the lock: read what exists, insert the rest.
        current = _select_states(conn, list(firsts))
        fresh = [row for row in rows if row[0] not in current]
        _insert_rows(conn, _STATE_COLUMNS_INSERT, fresh)
        created = {row[0] for row in fresh}
    else:
        created = set()
        for chunk in _chunks(rows):
            sql = (
                _values(_STATE_COLUMNS_INSERT, chunk)
                + " ON CONFLICT (key) DO NOTHING RETURNING key"
            )
            created.update(key for (key,) in conn.execute(sql, _flat(chunk)))
        current = _select_states(conn, [key for key in firsts if key not in created])
    outcome: dict[int, tuple[VerificationState | None, VerificationState | None]] = {}
    setter: dict[str, int] = {}
    for i in known:
        event = events[i]
        if event.key in created and firsts[event.key] == i:
            state = VerificationState.from_event(event)
            outcome[i] = (None, state)
            current[event.key] = state
            continue
        before = current.get(event.key)
        after = reconcile(before, event)
        outcome[i] = (before, after)
        if after is not None:
            current[event.key] = after
            setter[event.key] = i
    if setter:
        conn.executemany(
            _UPDATE_STATE,
            [(*_state_values(events[i])[1:], seqs[keys[i]], now, key) for key, i in setter.items()],
        )
    return outcome


def _insert_events(conn: Connection, rows: list[tuple[Any, ...]]) -> dict[_Ident, int]:
    """Insert the rows not stored yet; return {(scope, dedup key): seq} of those inserted."""
    seqs: dict[_Ident, int] = {}
    if conn.dialect == "postgres":
        for chunk in _chunks(rows):
            sql = _values(_EVENT_COLUMNS_INSERT, chunk)
            sql += (
                " ON CONFLICT (verification_key, dedup_key) DO NOTHING"
                " RETURNING verification_key, dedup_key, seq"
            )
            seqs.update(((v, k), int(seq)) for v, k, seq in conn.execute(sql, _flat(chunk)))
        return seqs
    # SQLite, under its single write lock. RETURNING would cost one step per row, and the
    # sqlite3 module lets go of the GIL at every step: on one core each step can hand the
    # event loop the CPU and wait for it back. So: a lookup, a plain insert, and the seqs
    # from last_insert_rowid() (AUTOINCREMENT numbers a multi-row insert consecutively),
    # checked at both ends.
    existing: set[_Ident] = set()
    for chunk in _chunks(rows):
        # One index probe per row: a join on a VALUES list. (Two IN lists, `key IN (..)
        # AND scope IN (..)`, probe every pair of the cross product: 4,096 probes for a
        # batch of 64, ~4 us of the writer's ~35 us of CPU per event.)
        sql = (
            "SELECT e.verification_key, e.dedup_key FROM (VALUES "
            + ", ".join(["(?, ?)"] * len(chunk))
            + ") AS v JOIN verihook_inbox_events e"
            " ON e.verification_key = v.column1 AND e.dedup_key = v.column2"
        )
        existing.update(
            (v, k) for v, k in conn.execute(sql, [x for r in chunk for x in (r[3], r[0])])
        )
    fresh = [row for row in rows if (row[3], row[0]) not in existing]
    for chunk in _chunks(fresh):
        conn.execute(_values(_EVENT_COLUMNS_INSERT, chunk), _flat(chunk))
        last = int(conn.scalar("SELECT last_insert_rowid()"))
        first = last - len(chunk) + 1
        ends = conn.execute(
            "SELECT seq, dedup_key FROM verihook_inbox_events WHERE seq IN (?, ?)", (first, last)
        )
        if sorted(ends) != sorted({(first, chunk[0][0]), (last, chunk[-1][0])}):
            raise RuntimeError("inserted events were not numbered consecutively")
        seqs.update(((row[3], row[0]), first + offset) for offset, row in enumerate(chunk))
    return seqs


def _select_states(conn: Connection, keys: list[str]) -> dict[str, VerificationState | None]:
    current: dict[str, VerificationState | None] = {}
    for chunk in _chunks(keys):
        sql = (
            "SELECT key, event_type, status, created, updated, processed"
            " FROM verihook_inbox_states WHERE key IN (" + _marks(len(chunk)) + ")"
        )
        if conn.dialect == "postgres":
            sql += " FOR UPDATE"
        for row in conn.execute(sql, chunk):
            current[row[0]] = _state_from_row(row)
    return current


def _insert_rows(conn: Connection, insert: str, rows: list[tuple[Any, ...]]) -> None:
    for chunk in _chunks(rows):
        conn.execute(_values(insert, chunk), _flat(chunk))


def _values(insert: str, chunk: Sequence[tuple[Any, ...]]) -> str:
    row = "(" + _marks(len(chunk[0])) + ")"
    return insert + ", ".join([row] * len(chunk))


def _marks(count: int) -> str:
    return ", ".join(["?"] * count)


def _flat(chunk: Sequence[tuple[Any, ...]]) -> list[Any]:
    return [value for row in chunk for value in row]


def _state_values(event: WebhookEvent) -> tuple[Any, ...]:
    return (
        event.key,
        event.event.value,
        event.status.value,
        event.created,
        event.updated,
        event.processed,
    )


def _chunks(rows: Sequence[Any]) -> list[Sequence[Any]]:
    return [rows[i : i + _CHUNK] for i in range(0, len(rows), _CHUNK)]


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


def retry_failed_runs(conn: Connection, now: float) -> int:
    """``retry_run`` for every failed run at once; returns how many were queued again."""
    return conn.rowcount(
        "UPDATE verihook_inbox_runs SET state = 'pending', attempts = 0, next_run_at = ?,"
        " updated_at = ? WHERE state = 'failed'",
        (now, now),
    )


def prune_events(conn: Connection, before: float, include_failed: bool) -> int:
    """Delete the events received before ``before`` whose runs are all finished, with their
    runs; returns how many events went. Call it inside a transaction.

    Finished means succeeded, or failed too with ``include_failed``; an event with a pending
    run (due, backing off or in a handler right now) is always kept. The reconciled states
    are kept: they are the state, not its history (a state's ``event_seq`` may then name a
    pruned event). A duplicate of a pruned event arriving later is stored again as a new
    event, and its ``on(...)`` handlers run again (at least once, as ever); reconciliation
    makes it otherwise harmless: an event equal to the state never moves it, so the state
    stays and ``on_change`` does not fire.
    """
    unfinished = "('pending')" if include_failed else "('pending', 'failed')"
    doomed = (
        "SELECT e.seq FROM verihook_inbox_events e WHERE e.received_at < ? AND NOT EXISTS"
        " (SELECT 1 FROM verihook_inbox_runs r WHERE r.event_seq = e.seq"
        f" AND r.state IN {unfinished})"
    )
    if conn.dialect == "postgres":
        # One statement, so one snapshot picks the events and deletes both tables' rows: a
        # run finishing meanwhile cannot put an event in the second DELETE but not the first.
        return conn.rowcount(
            f"WITH doomed AS ({doomed}),"
            " runs AS (DELETE FROM verihook_inbox_runs WHERE event_seq IN"
            " (SELECT seq FROM doomed))"
            " DELETE FROM verihook_inbox_events WHERE seq IN (SELECT seq FROM doomed)",
            (before,),
        )
    # SQLite: the transaction holds the only write lock, so both statements pick the same
    # events (deleting an event's finished runs cannot make it unfinished).
    conn.execute(f"DELETE FROM verihook_inbox_runs WHERE event_seq IN ({doomed})", (before,))
    return conn.rowcount(f"DELETE FROM verihook_inbox_events WHERE seq IN ({doomed})", (before,))


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
    if not key:  # "" is the store's stand-in for "no key", not a verification
        return []
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
        verification_key=vkey or None,
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
