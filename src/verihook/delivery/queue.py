"""The delivery queue in SQL: claim with a lease, record attempts, release, replay, recover.

The queue is ``verihook_deliveries``. A claimed row stays ``pending`` with a lease, and its
``next_attempt_at`` moves to the lease's expiry: if the worker dies, the row simply falls due
again when the lease runs out (crash recovery needs no sweeper; delivery is at least once).
Every write checks the lease (owner and attempt number), so a worker that lost its lease can
never overwrite what another worker did since.

The functions take a ``Connection`` and run inside the caller's transaction: the worker
batches them through the GroupCommitter, the CLI runs each in its own transaction.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from verihook.delivery.health import CircuitBreaker, EndpointHealth
from verihook.delivery.outcome import Decision, Next, Outcome
from verihook.delivery.sender import AttemptResult, OutgoingRequest
from verihook.exceptions import Conflict, InvalidInput, NotFound
from verihook.provider.ids import new_delivery_id
from verihook.store.database import Connection

__all__ = [
    "NOTIFY_CHANNEL",
    "AttemptRecord",
    "AttemptRow",
    "ClaimedDelivery",
    "DeliveryRow",
    "QueueStats",
    "claim",
    "count_recoverable",
    "get_delivery",
    "list_deliveries",
    "next_due",
    "queue_stats",
    "record",
    "recover",
    "release",
    "replay_delivery",
    "replay_failed",
]

NOTIFY_CHANNEL = "verihook_deliveries"
_MAX_ENDPOINTS_PER_CLAIM = 256
_IDS_PER_STATEMENT = 500
STATES = ("pending", "succeeded", "failed")


@dataclass(frozen=True, slots=True)
class ClaimedDelivery:
    """A leased delivery with what the sender needs. ``attempt`` is this attempt's number."""

    id: str
    event_id: str
    endpoint_id: str
    attempt: int
    url: str
    payload: bytes
    encryption_secret: str | None
    signing_secrets: tuple[str, ...]
    retry_schedule: str | None
    rate_limit: float | None
    health: EndpointHealth
    event_created_at: float
    lease_owner: str

    def request(self) -> OutgoingRequest:
        return OutgoingRequest(
            self.event_id,
            self.url,
            self.payload,
            self.attempt,
            self.encryption_secret,
            self.signing_secrets,
        )

    def __repr__(self) -> str:  # never the secrets
        return f"ClaimedDelivery(id={self.id!r}, attempt={self.attempt})"


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    """One finished attempt and what it decided, ready to be written."""

    delivery: ClaimedDelivery
    started_at: float
    result: AttemptResult
    decision: Decision


def _placeholders(n: int) -> str:
    return ", ".join("?" * n)


def claim(
    conn: Connection,
    *,
    owner: str,
    now: float,
    limit: int,
    lease_seconds: float,
    breaker: CircuitBreaker,
) -> list[ClaimedDelivery]:
    """Lease up to ``limit`` due deliveries, spread over the endpoints that have some.

    Skips disabled endpoints and open circuits, and keeps each endpoint under its
    ``max_in_flight`` (1 while its circuit is half-open), exactly. On PostgreSQL claimers take
    turns on a transaction-scoped advisory lock, so each one's in-flight count sees every lease
    committed before it: run the claim in a transaction of its own there (the worker does), or
    the lock is held until whatever shares the transaction commits.
    """
    if limit <= 0:
        return []
    postgres = conn.dialect == "postgres"
    if postgres:
        # Rather than locking endpoint rows SKIP LOCKED: a claimer that skipped a locked
        # endpoint saw "nothing due" and slept, so two workers on one endpoint took turns.
        # Waiting here costs one short claim transaction at most.
        conn.execute(
            "SELECT 1 FROM (SELECT pg_advisory_xact_lock("
            "hashtext(current_schema() || '.verihook_claim'))) AS claim_lock"
        )
    endpoints = conn.execute(
        "SELECT e.id, e.url, e.encryption_secret, e.signing_secret, e.previous_signing_secret,"
        " e.previous_signing_secret_until, e.retry_schedule, e.max_in_flight, e.rate_limit,"
        " e.consecutive_failures, e.failing_since, e.circuit_open_until,"
        " (SELECT COUNT(*) FROM verihook_deliveries l WHERE l.endpoint_id = e.id"
        " AND l.lease_owner IS NOT NULL AND l.lease_expires_at > ? AND l.state = 'pending')"
        " FROM verihook_endpoints e"
        " WHERE e.enabled = ? AND (e.circuit_open_until IS NULL OR e.circuit_open_until <= ?)"
        " AND EXISTS (SELECT 1 FROM verihook_deliveries d WHERE d.endpoint_id = e.id"
        " AND d.state = 'pending' AND d.next_attempt_at <= ?)"
        f" LIMIT {_MAX_ENDPOINTS_PER_CLAIM}",
        (now, True, now, now),
    )
    if not endpoints:
        return []
    rooms: dict[str, int] = {}
    for row in endpoints:
        health = EndpointHealth(int(row[9]), row[10], row[11])
        cap = 1 if breaker.probing(health) else int(row[7])
        rooms[row[0]] = max(0, cap - int(row[12]))
    expires = now + lease_seconds
    # SKIP LOCKED on the rows themselves: a row another transaction is writing (an expired
    # lease being recorded) is simply not taken now.
    row_lock = " FOR UPDATE SKIP LOCKED" if postgres else ""
    rows: list[tuple[Any, ...]] = []
    for endpoint_id, share in _spread(rooms, limit).items():
        if share <= 0:
            continue
        # Pick, lease and read back in one statement: the CTE picks the earliest due rows
        # (the endpoint_due index hands them over in order), RETURNING brings the payload.
        rows.extend(
            conn.execute(
                # LIMIT is a parameter so that the text, and PostgreSQL's prepared plan, is
                # one for every share size.
                "WITH picked AS (SELECT id FROM verihook_deliveries WHERE endpoint_id = ?"
                " AND state = 'pending' AND next_attempt_at <= ? ORDER BY next_attempt_at"
                f" LIMIT ?{row_lock})"
                " UPDATE verihook_deliveries SET attempts = attempts + 1, lease_owner = ?,"
                " lease_expires_at = ?, next_attempt_at = ?, updated_at = ?"
                " WHERE id IN (SELECT id FROM picked)"
                " RETURNING id, event_id, endpoint_id, attempts,"
                " (SELECT ev.payload FROM verihook_events ev WHERE ev.id = event_id),"
                " (SELECT ev.created_at FROM verihook_events ev WHERE ev.id = event_id)",
                (endpoint_id, now, int(share), owner, expires, expires, now),
            )
        )
    rows.sort(key=lambda r: (r[5], r[0]))  # oldest events first, as they were due
    by_endpoint = {row[0]: row for row in endpoints}
    claimed = []
    for delivery_id, event_id, endpoint_id, attempts, payload, created_at in rows:
        e = by_endpoint[endpoint_id]
        signing = [e[3]]
        if e[4] is not None and e[5] is not None and e[5] > now:
            signing.append(e[4])  # rotation overlap: the receiver may still hold the old one
        claimed.append(
            ClaimedDelivery(
                id=delivery_id,
                event_id=event_id,
                endpoint_id=endpoint_id,
                attempt=int(attempts),
                url=e[1],
                payload=payload.encode() if isinstance(payload, str) else bytes(payload),
                encryption_secret=e[2],
                signing_secrets=tuple(signing),
                retry_schedule=e[6],
                rate_limit=e[8],
                health=EndpointHealth(int(e[9]), e[10], e[11]),
                event_created_at=float(created_at),
                lease_owner=owner,
            )
        )
    return claimed


def _spread(rooms: dict[str, int], limit: int) -> dict[str, int]:
    """Share ``limit`` slots round-robin, so one busy endpoint cannot take them all."""
    shares = dict.fromkeys(rooms, 0)
    left = limit
    while left > 0:
        progressed = False
        for endpoint_id, room in rooms.items():
            if left == 0:
                break
            if shares[endpoint_id] < room:
                shares[endpoint_id] += 1
                left -= 1
                progressed = True
        if not progressed:
            break
    return shares


def record(
    conn: Connection, records: Sequence[AttemptRecord], now: float, breaker: CircuitBreaker
) -> int:
    """Write attempts and their decisions; update endpoint health. Returns rows applied.

    Attempts are history and always written; the delivery's row only changes while this
    worker still holds its lease.
    """
    if not records:
        return 0
    conn.executemany(
        "INSERT INTO verihook_attempts (delivery_id, number, started_at, latency_ms,"
        " status_code, error, response_body, outcome) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
        + (" ON CONFLICT DO NOTHING"),
        [
            (
                r.delivery.id,
                r.delivery.attempt,
                r.started_at,
                round(r.result.latency_ms, 3),
                r.result.status_code,
                r.result.error,
                r.result.response_body,
                r.result.outcome.value,
            )
            for r in records
        ],
    )
    # One UPDATE per distinct outcome rather than per delivery: a batch of successes (the
    # common case) is a single statement. Each row is still written only under its lease.
    groups: dict[tuple[Any, ...], list[str]] = defaultdict(list)
    for r in records:
        d, decision = r.delivery, r.decision
        finished = decision.state is not Next.RETRY
        key = (
            decision.state.value,
            decision.next_attempt_at if decision.next_attempt_at is not None else now,
            r.result.status_code,
            r.result.error,
            now if finished else None,
            d.lease_owner,
            d.attempt,
        )
        groups[key].append(d.id)
    applied = 0
    update = (
        "UPDATE verihook_deliveries SET state = ?, next_attempt_at = ?,"
        " lease_owner = NULL, lease_expires_at = NULL, last_status_code = ?,"
        " last_error = ?, updated_at = ?, completed_at = ?"
        " WHERE lease_owner = ? AND attempts = ? AND state = 'pending'"
    )
    for (state, next_at, status, error, completed, owner, attempt), ids in groups.items():
        if conn.dialect == "postgres":
            # One array parameter: one statement text, so one prepared plan, for any count.
            applied += conn.rowcount(
                update + " AND id = ANY(?)",
                (state, next_at, status, error, now, completed, owner, attempt, ids),
            )
            continue
        for start in range(0, len(ids), _IDS_PER_STATEMENT):
            chunk = ids[start : start + _IDS_PER_STATEMENT]
            applied += conn.rowcount(
                update + f" AND id IN ({_placeholders(len(chunk))})",
                (state, next_at, status, error, now, completed, owner, attempt, *chunk),
            )
    _update_health(conn, records, now, breaker)
    return applied


def _update_health(
    conn: Connection, records: Sequence[AttemptRecord], now: float, breaker: CircuitBreaker
) -> None:
    grouped: dict[str, list[AttemptRecord]] = defaultdict(list)
    for r in records:
        if r.result.outcome is not Outcome.INVALID:  # our own fault, not the endpoint's
            grouped[r.delivery.endpoint_id].append(r)
    lock = " FOR UPDATE" if conn.dialect == "postgres" else ""
    # In id order, so two transactions updating the same endpoints lock them in one order.
    for endpoint_id, group in sorted(grouped.items()):
        all_ok = all(r.result.outcome is Outcome.SUCCESS for r in group)
        if all_ok and all(r.delivery.health.healthy for r in group):
            continue  # the common case: a healthy endpoint stays healthy, no write
        row = conn.one(
            "SELECT consecutive_failures, failing_since, circuit_open_until, enabled"
            f" FROM verihook_endpoints WHERE id = ?{lock}",
            (endpoint_id,),
        )
        if row is None:
            continue
        health = EndpointHealth(int(row[0]), row[1], row[2])
        before = health
        disable: str | None = None
        for r in group:
            change = breaker.after(health, r.result.outcome is Outcome.SUCCESS, now)
            health = change.health
            disable = r.decision.disable_reason or change.disable_reason or disable
        if health != before:
            conn.execute(
                "UPDATE verihook_endpoints SET consecutive_failures = ?, failing_since = ?,"
                " circuit_open_until = ?, updated_at = ? WHERE id = ?",
                (
                    health.consecutive_failures,
                    health.failing_since,
                    health.circuit_open_until,
                    now,
                    endpoint_id,
                ),
            )
        if disable is not None and row[3]:
            conn.execute(
                "UPDATE verihook_endpoints SET enabled = ?, disabled_reason = ?, updated_at = ?"
                " WHERE id = ?",
                (False, disable, now, endpoint_id),
            )


def release(
    conn: Connection, deliveries: Sequence[ClaimedDelivery], now: float, at: float | None = None
) -> int:
    """Give leased deliveries back without spending their attempt (shutdown, rate limit)."""
    released = 0
    for d in deliveries:
        released += conn.rowcount(
            "UPDATE verihook_deliveries SET attempts = attempts - 1, lease_owner = NULL,"
            " lease_expires_at = NULL, next_attempt_at = ?, updated_at = ?"
            " WHERE id = ? AND lease_owner = ? AND attempts = ? AND state = 'pending'",
            (now if at is None else at, now, d.id, d.lease_owner, d.attempt),
        )
    return released


def next_due(conn: Connection) -> float | None:
    """The earliest time anything pending falls due (a lease expiry counts)."""
    # One probe per endpoint into endpoint_due (endpoints are few, deliveries many).
    value = conn.scalar(
        "SELECT MIN((SELECT d.next_attempt_at FROM verihook_deliveries d"
        " WHERE d.endpoint_id = e.id AND d.state = 'pending'"
        " ORDER BY d.next_attempt_at LIMIT 1)) FROM verihook_endpoints e"
    )
    return None if value is None else float(value)


# --- operators: list, show, replay, recover ------------------------------------------------


@dataclass(frozen=True, slots=True)
class DeliveryRow:
    id: str
    event_id: str
    endpoint_id: str
    state: str
    attempts: int
    next_attempt_at: float | None
    leased: bool
    last_status_code: int | None
    last_error: str | None
    created_at: float
    completed_at: float | None
    event_type: str
    verification_key: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "event_id": self.event_id,
            "endpoint_id": self.endpoint_id,
            "event": self.event_type,
            "verification_key": self.verification_key,
            "state": self.state,
            "attempts": self.attempts,
            "next_attempt_at": self.next_attempt_at if self.state == "pending" else None,
            "in_flight": self.leased,
            "last_status_code": self.last_status_code,
            "last_error": self.last_error,
            "created_at": self.created_at,
            "completed_at": self.completed_at,
        }


@dataclass(frozen=True, slots=True)
class AttemptRow:
    number: int
    started_at: float
    latency_ms: float | None
    status_code: int | None
    outcome: str
    error: str | None
    response_body: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "started_at": self.started_at,
            "latency_ms": self.latency_ms,
            "status_code": self.status_code,
            "outcome": self.outcome,
            "error": self.error,
            "response_body": self.response_body,
        }


_DELIVERY_COLUMNS = (
    "d.id, d.event_id, d.endpoint_id, d.state, d.attempts, d.next_attempt_at,"
    " d.lease_owner IS NOT NULL AND d.lease_expires_at > ?, d.last_status_code, d.last_error,"
    " d.created_at, d.completed_at, ev.event_type, ev.verification_key"
    " FROM verihook_deliveries d JOIN verihook_events ev ON ev.id = d.event_id"
)


def _delivery(row: Sequence[Any]) -> DeliveryRow:
    return DeliveryRow(
        row[0], row[1], row[2], row[3], int(row[4]), row[5], bool(row[6]), row[7], row[8],
        row[9], row[10], row[11], row[12],
    )  # fmt: skip


def list_deliveries(
    conn: Connection,
    now: float,
    *,
    state: str | None = None,
    endpoint_id: str | None = None,
    event_id: str | None = None,
    limit: int = 50,
) -> list[DeliveryRow]:
    if state is not None and state not in STATES:
        raise InvalidInput(f"state must be one of {', '.join(STATES)}")
    if not 1 <= limit <= 10_000:
        raise InvalidInput("limit must be between 1 and 10000")
    where: list[str] = []
    params: list[Any] = [now]
    filters = (("d.state", state), ("d.endpoint_id", endpoint_id), ("d.event_id", event_id))
    for column, value in filters:
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    rows = conn.execute(
        f"SELECT {_DELIVERY_COLUMNS}{clause} ORDER BY d.created_at DESC, d.id LIMIT {int(limit)}",
        tuple(params),
    )
    return [_delivery(r) for r in rows]


def get_delivery(
    conn: Connection, delivery_id: str, now: float
) -> tuple[DeliveryRow, list[AttemptRow]]:
    _check_id(delivery_id, "delivery id")
    row = conn.one(f"SELECT {_DELIVERY_COLUMNS} WHERE d.id = ?", (now, delivery_id))
    if row is None:
        raise NotFound(f"no delivery {delivery_id}")
    attempts = conn.execute(
        "SELECT number, started_at, latency_ms, status_code, outcome, error, response_body"
        " FROM verihook_attempts WHERE delivery_id = ? ORDER BY number",
        (delivery_id,),
    )
    return _delivery(row), [AttemptRow(*a) for a in attempts]


def _check_id(value: str, what: str) -> None:
    if not isinstance(value, str) or not 1 <= len(value) <= 200 or not value.isprintable():
        raise InvalidInput(f"{what} is malformed")


def _notify(conn: Connection) -> None:
    if conn.dialect == "postgres":
        conn.execute(f"NOTIFY {NOTIFY_CHANNEL}")


def replay_delivery(conn: Connection, delivery_id: str, now: float) -> str:
    """Queue the same event to the same endpoint again, as a new delivery; returns its id.

    A new row rather than a reset: the old delivery keeps its history, and the event id
    (``webhook-id``) is the same, so a receiver deduplicates it if it had arrived after all.
    """
    _check_id(delivery_id, "delivery id")
    lock = " FOR UPDATE" if conn.dialect == "postgres" else ""
    row = conn.one(
        f"SELECT event_id, endpoint_id, state FROM verihook_deliveries WHERE id = ?{lock}",
        (delivery_id,),
    )
    if row is None:
        raise NotFound(f"no delivery {delivery_id}")
    if row[2] == "pending":
        raise Conflict(f"delivery {delivery_id} is still pending; it will be tried again")
    _check_endpoint_enabled(conn, row[1])
    new_id = new_delivery_id()
    _insert_pending(conn, [(new_id, row[0], row[1])], now)
    _notify(conn)
    return new_id


def replay_failed(conn: Connection, endpoint_id: str, since: float, now: float) -> list[str]:
    """Queue again every failed delivery of an endpoint that failed at or after ``since``.

    A failed delivery whose event already has a newer pending or successful delivery to the
    same endpoint is skipped, so replaying twice does not send twice.
    """
    _check_id(endpoint_id, "endpoint id")
    _check_endpoint_enabled(conn, endpoint_id)
    rows = conn.execute(
        "SELECT DISTINCT f.event_id FROM verihook_deliveries f"
        " WHERE f.endpoint_id = ? AND f.state = 'failed' AND f.completed_at >= ?"
        " AND NOT EXISTS (SELECT 1 FROM verihook_deliveries o WHERE o.endpoint_id = f.endpoint_id"
        " AND o.event_id = f.event_id AND o.state IN ('pending', 'succeeded'))"
        " ORDER BY f.event_id",
        (endpoint_id, since),
    )
    new = [(new_delivery_id(), event_id, endpoint_id) for (event_id,) in rows]
    _insert_pending(conn, new, now)
    if new:
        _notify(conn)
    return [n[0] for n in new]


def _check_endpoint_enabled(conn: Connection, endpoint_id: str) -> None:
    row = conn.one("SELECT enabled FROM verihook_endpoints WHERE id = ?", (endpoint_id,))
    if row is None:
        raise NotFound(f"no endpoint {endpoint_id}")
    if not row[0]:
        raise Conflict(f"endpoint {endpoint_id} is disabled; enable it before replaying")


def _insert_pending(conn: Connection, rows: Sequence[tuple[str, str, str]], now: float) -> None:
    conn.executemany(
        "INSERT INTO verihook_deliveries (id, event_id, endpoint_id, state, attempts,"
        " next_attempt_at, created_at, updated_at) VALUES (?, ?, ?, 'pending', 0, ?, ?, ?)",
        [(i, e, p, now, now, now) for i, e, p in rows],
    )


def count_recoverable(conn: Connection, now: float, *, force: bool = False) -> int:
    expiry = "" if force else " AND lease_expires_at <= ?"
    params: tuple[float, ...] = () if force else (now,)
    return int(
        conn.scalar(
            "SELECT COUNT(*) FROM verihook_deliveries WHERE state = 'pending'"
            f" AND lease_owner IS NOT NULL{expiry}",
            params,
        )
    )


def recover(conn: Connection, now: float, *, force: bool = False, batch: int = 500) -> int:
    """Requeue up to ``batch`` deliveries whose lease expired (their worker died): due now.

    Their attempt stays counted (it may have reached the endpoint). ``force`` also takes back
    unexpired leases: only when no worker is running. Returns how many were requeued.
    """
    expiry = "" if force else " AND lease_expires_at <= ?"
    params: tuple[float, ...] = () if force else (now,)
    ids = [
        r[0]
        for r in conn.execute(
            "SELECT id FROM verihook_deliveries WHERE state = 'pending'"
            f" AND lease_owner IS NOT NULL{expiry} ORDER BY id LIMIT {int(batch)}",
            params,
        )
    ]
    if not ids:
        return 0
    conn.execute(
        "UPDATE verihook_deliveries SET lease_owner = NULL, lease_expires_at = NULL,"
        f" next_attempt_at = ?, updated_at = ? WHERE id IN ({_placeholders(len(ids))})",
        (now, now, *ids),
    )
    _notify(conn)
    return len(ids)


@dataclass(frozen=True, slots=True)
class QueueStats:
    pending: int
    due: int
    in_flight: int
    succeeded: int
    failed: int
    endpoints_open: int
    endpoints_disabled: int


def queue_stats(conn: Connection, now: float) -> QueueStats:
    counts: dict[str, int] = dict(
        conn.execute("SELECT state, COUNT(*) FROM verihook_deliveries GROUP BY state")
    )
    due = conn.scalar(
        "SELECT COUNT(*) FROM verihook_deliveries WHERE state = 'pending' AND next_attempt_at <= ?"
        " AND (lease_owner IS NULL OR lease_expires_at <= ?)",
        (now, now),
    )
    in_flight = conn.scalar(
        "SELECT COUNT(*) FROM verihook_deliveries WHERE state = 'pending'"
        " AND lease_owner IS NOT NULL AND lease_expires_at > ?",
        (now,),
    )
    endpoints = conn.one(
        "SELECT SUM(CASE WHEN enabled = ? AND circuit_open_until > ? THEN 1 ELSE 0 END),"
        " SUM(CASE WHEN enabled = ? THEN 0 ELSE 1 END) FROM verihook_endpoints",
        (True, now, True),
    ) or (0, 0)
    return QueueStats(
        pending=int(counts.get("pending", 0)),
        due=int(due or 0),
        in_flight=int(in_flight or 0),
        succeeded=int(counts.get("succeeded", 0)),
        failed=int(counts.get("failed", 0)),
        endpoints_open=int(endpoints[0] or 0),
        endpoints_disabled=int(endpoints[1] or 0),
    )
