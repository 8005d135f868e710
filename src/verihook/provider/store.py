"""The provider's SQL: verification, endpoint and settings rows, to and from domain values.

Every function takes an open ``Connection``; the caller owns the transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from verihook.exceptions import Conflict, NotFound
from verihook.format import EventType, SigningSecret, Status, WebhookSecret
from verihook.provider.endpoints import Endpoint
from verihook.provider.thresholds import Thresholds
from verihook.provider.verifications import Stage, Verification
from verihook.store import Connection, IntegrityError

__all__ = [
    "EventRecord",
    "insert_endpoint",
    "insert_verification",
    "list_endpoints",
    "list_events",
    "list_verifications",
    "load_endpoint",
    "load_thresholds",
    "load_verification",
    "save_thresholds",
    "set_endpoint_enabled",
    "update_endpoint_secrets",
    "update_endpoint_settings",
    "update_verification",
]

_VERIFICATION_COLUMNS = "key, status, score, created, updated, processed, completed_at, reviewed_at"
_ENDPOINT_COLUMNS = (
    "id, url, event_types, encryption_secret, signing_secret, previous_signing_secret,"
    " previous_signing_secret_until, enabled, disabled_reason, retry_schedule, max_in_flight,"
    " rate_limit, created_at, updated_at"
)
_THRESHOLDS = "thresholds"


# --- verifications ------------------------------------------------------------------------


def insert_verification(conn: Connection, verification: Verification) -> None:
    try:
        with conn.savepoint():
            conn.execute(
                f"INSERT INTO verihook_verifications ({_VERIFICATION_COLUMNS})"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                _verification_params(verification),
            )
    except IntegrityError:
        raise Conflict(f"verification {verification.key} already exists") from None


def load_verification(conn: Connection, key: str, for_update: bool = False) -> Verification:
    # SQLite's BEGIN IMMEDIATE already holds the write lock; PostgreSQL needs the row lock
    # so two completions of one verification cannot both see it "created".
    lock = " FOR UPDATE" if for_update and conn.dialect == "postgres" else ""
    row = conn.one(
        f"SELECT {_VERIFICATION_COLUMNS} FROM verihook_verifications WHERE key = ?{lock}", (key,)
    )
    if row is None:
        raise NotFound(f"no verification {key}")
    return _verification(row)


def update_verification(conn: Connection, verification: Verification) -> None:
    conn.execute(
        "UPDATE verihook_verifications SET status = ?, score = ?, updated = ?, processed = ?,"
        " completed_at = ?, reviewed_at = ? WHERE key = ?",
        (
            verification.status.value,
            verification.score,
            verification.updated,
            verification.processed,
            verification.completed_at,
            verification.reviewed_at,
            verification.key,
        ),
    )


def list_verifications(
    conn: Connection, stage: Stage | None = None, limit: int = 100
) -> list[Verification]:
    where = {
        None: "",
        Stage.CREATED: " WHERE completed_at IS NULL",
        Stage.COMPLETED: " WHERE completed_at IS NOT NULL AND reviewed_at IS NULL",
        Stage.REVIEWED: " WHERE reviewed_at IS NOT NULL",
    }[stage]
    rows = conn.execute(
        f"SELECT {_VERIFICATION_COLUMNS} FROM verihook_verifications{where}"
        " ORDER BY created DESC, key LIMIT ?",
        (limit,),
    )
    return [_verification(row) for row in rows]


class EventRecord(dict[str, Any]):
    """One outbox event with a count of its deliveries by state (a plain dict, for JSON)."""


def list_events(conn: Connection, key: str) -> list[EventRecord]:
    rows = conn.execute(
        "SELECT e.id, e.event_type, e.payload, e.created_at, d.state, COUNT(d.id)"
        " FROM verihook_events e LEFT JOIN verihook_deliveries d ON d.event_id = e.id"
        " WHERE e.verification_key = ?"
        " GROUP BY e.id, e.event_type, e.payload, e.created_at, d.state"
        " ORDER BY e.created_at, e.event_type, e.id",
        (key,),
    )
    records: dict[str, EventRecord] = {}
    for event_id, event_type, payload, created_at, state, count in rows:
        record = records.setdefault(
            event_id,
            EventRecord(
                id=event_id,
                event=event_type,
                payload=orjson.loads(payload),
                created_at=created_at,
                deliveries={},
            ),
        )
        if state is not None:
            record["deliveries"][state] = int(count)
    return list(records.values())


def _verification_params(v: Verification) -> tuple[Any, ...]:
    return (
        v.key,
        v.status.value,
        v.score,
        v.created,
        v.updated,
        v.processed,
        v.completed_at,
        v.reviewed_at,
    )


def _verification(row: Sequence[Any]) -> Verification:
    key, status, score, created, updated, processed, completed_at, reviewed_at = row
    return Verification(
        key=key,
        status=Status(status),
        score=None if score is None else float(score),
        created=int(created),
        updated=int(updated),
        processed=None if processed is None else int(processed),
        completed_at=completed_at,
        reviewed_at=reviewed_at,
    )


# --- settings -----------------------------------------------------------------------------


def load_thresholds(conn: Connection) -> Thresholds:
    value = conn.scalar(
        "SELECT value FROM verihook_provider_settings WHERE name = ?", (_THRESHOLDS,)
    )
    if value is None:
        return Thresholds.off()
    return Thresholds.from_dict(orjson.loads(value))


def save_thresholds(conn: Connection, thresholds: Thresholds) -> None:
    conn.execute(
        "INSERT INTO verihook_provider_settings (name, value) VALUES (?, ?)"
        " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        (_THRESHOLDS, orjson.dumps(thresholds.to_dict()).decode("utf-8")),
    )


# --- endpoints ----------------------------------------------------------------------------


def insert_endpoint(conn: Connection, endpoint: Endpoint) -> None:
    conn.execute(
        f"INSERT INTO verihook_endpoints ({_ENDPOINT_COLUMNS})"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            endpoint.id,
            endpoint.url,
            _event_types_text(endpoint.event_types),
            _reveal(endpoint.encryption_secret),
            endpoint.signing_secret.reveal(),
            _reveal(endpoint.previous_signing_secret),
            endpoint.previous_signing_secret_until,
            endpoint.enabled,
            endpoint.disabled_reason,
            _schedule_text(endpoint.retry_schedule),
            endpoint.max_in_flight,
            endpoint.rate_limit,
            endpoint.created_at,
            endpoint.updated_at,
        ),
    )


def load_endpoint(conn: Connection, endpoint_id: str, for_update: bool = False) -> Endpoint:
    lock = " FOR UPDATE" if for_update and conn.dialect == "postgres" else ""
    row = conn.one(
        f"SELECT {_ENDPOINT_COLUMNS} FROM verihook_endpoints WHERE id = ?{lock}", (endpoint_id,)
    )
    if row is None:
        shown = endpoint_id if len(endpoint_id) <= 64 else endpoint_id[:64] + "..."
        raise NotFound(f"no endpoint {shown}")
    return _endpoint(row)


def list_endpoints(conn: Connection) -> list[Endpoint]:
    rows = conn.execute(
        f"SELECT {_ENDPOINT_COLUMNS} FROM verihook_endpoints ORDER BY created_at, id"
    )
    return [_endpoint(row) for row in rows]


def set_endpoint_enabled(
    conn: Connection, endpoint_id: str, enabled: bool, reason: str | None, now: float
) -> None:
    if enabled:
        # A human turning it back on starts its health record afresh.
        count = conn.rowcount(
            "UPDATE verihook_endpoints SET enabled = ?, disabled_reason = NULL,"
            " failing_since = NULL, consecutive_failures = 0, circuit_open_until = NULL,"
            " updated_at = ? WHERE id = ?",
            (True, now, endpoint_id),
        )
    else:
        count = conn.rowcount(
            "UPDATE verihook_endpoints SET enabled = ?, disabled_reason = ?, updated_at = ?"
            " WHERE id = ?",
            (False, reason, now, endpoint_id),
        )
    if count == 0:
        load_endpoint(conn, endpoint_id)  # raises NotFound


def update_endpoint_secrets(conn: Connection, endpoint: Endpoint) -> None:
    conn.execute(
        "UPDATE verihook_endpoints SET encryption_secret = ?, signing_secret = ?,"
        " previous_signing_secret = ?, previous_signing_secret_until = ?, updated_at = ?"
        " WHERE id = ?",
        (
            _reveal(endpoint.encryption_secret),
            endpoint.signing_secret.reveal(),
            _reveal(endpoint.previous_signing_secret),
            endpoint.previous_signing_secret_until,
            endpoint.updated_at,
            endpoint.id,
        ),
    )


def update_endpoint_settings(conn: Connection, endpoint: Endpoint) -> None:
    """What an operator may change after creation; secrets and health are left alone."""
    conn.execute(
        "UPDATE verihook_endpoints SET url = ?, event_types = ?, retry_schedule = ?,"
        " max_in_flight = ?, rate_limit = ?, updated_at = ? WHERE id = ?",
        (
            endpoint.url,
            _event_types_text(endpoint.event_types),
            _schedule_text(endpoint.retry_schedule),
            endpoint.max_in_flight,
            endpoint.rate_limit,
            endpoint.updated_at,
            endpoint.id,
        ),
    )


def _reveal(secret: WebhookSecret | SigningSecret | None) -> str | None:
    return None if secret is None else secret.reveal()


def _event_types_text(event_types: tuple[EventType, ...]) -> str:
    return orjson.dumps([e.value for e in event_types]).decode("utf-8")


def _schedule_text(schedule: tuple[float, ...] | None) -> str | None:
    return None if schedule is None else orjson.dumps(list(schedule)).decode("utf-8")


def _endpoint(row: Sequence[Any]) -> Endpoint:
    (
        endpoint_id,
        url,
        event_types,
        encryption_secret,
        signing_secret,
        previous_signing_secret,
        previous_until,
        enabled,
        disabled_reason,
        retry_schedule,
        max_in_flight,
        rate_limit,
        created_at,
        updated_at,
    ) = row
    return Endpoint(
        id=endpoint_id,
        url=url,
        event_types=tuple(EventType(e) for e in orjson.loads(event_types)),
        encryption_secret=None if encryption_secret is None else WebhookSecret(encryption_secret),
        signing_secret=SigningSecret(signing_secret),
        previous_signing_secret=(
            None if previous_signing_secret is None else SigningSecret(previous_signing_secret)
        ),
        previous_signing_secret_until=previous_until,
        enabled=bool(enabled),
        disabled_reason=disabled_reason,
        retry_schedule=(
            None
            if retry_schedule is None
            else tuple(float(d) for d in orjson.loads(retry_schedule))
        ),
        max_in_flight=int(max_in_flight),
        rate_limit=None if rate_limit is None else float(rate_limit),
        created_at=float(created_at),
        updated_at=float(updated_at),
    )
