"""The outbox: a state change's events and their deliveries, written in the caller's transaction.

Called inside the same transaction as the verification update, so an event exists exactly when
its state change does, and every subscribed enabled endpoint has its delivery queued with it.
On PostgreSQL a NOTIFY in that transaction wakes the workers when (and only if) it commits;
its payload is the schema (``current_schema()``) the deliveries were written to.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from verihook.format import EventType, WebhookEvent
from verihook.provider.ids import new_delivery_id, new_event_id
from verihook.store import Connection

__all__ = ["NOTIFY_CHANNEL", "QueuedEvent", "enqueue"]

NOTIFY_CHANNEL = "verihook_deliveries"


@dataclass(frozen=True, slots=True)
class QueuedEvent:
    id: str
    event: WebhookEvent
    delivery_ids: tuple[str, ...]


def enqueue(conn: Connection, events: Sequence[WebhookEvent], now: float) -> list[QueuedEvent]:
    """Write each event and one pending delivery per subscribed enabled endpoint."""
    if not events:
        return []
    endpoints = [
        (endpoint_id, frozenset(orjson.loads(event_types)))
        for endpoint_id, event_types in conn.execute(
            "SELECT id, event_types FROM verihook_endpoints WHERE enabled = ? ORDER BY created_at",
            (True,),
        )
    ]
    queued: list[QueuedEvent] = []
    event_rows = []
    delivery_rows = []
    for event in events:
        event_id = new_event_id()
        event_rows.append(
            (event_id, event.key, event.event.value, event.to_json().decode("utf-8"), now)
        )
        delivery_ids = []
        for endpoint_id, event_types in endpoints:
            if _subscribed(event.event, event_types):
                delivery_id = new_delivery_id()
                delivery_ids.append(delivery_id)
                delivery_rows.append((delivery_id, event_id, endpoint_id, now, now, now))
        queued.append(QueuedEvent(event_id, event, tuple(delivery_ids)))
    if conn.dialect == "postgres":
        _write_postgres(conn, event_rows, delivery_rows)
        return queued
    conn.executemany(
        "INSERT INTO verihook_events (id, verification_key, event_type, payload, created_at)"
        " VALUES (?, ?, ?, ?, ?)",
        event_rows,
    )
    if delivery_rows:
        conn.executemany(
            "INSERT INTO verihook_deliveries"
            " (id, event_id, endpoint_id, state, attempts, next_attempt_at, created_at,"
            " updated_at) VALUES (?, ?, ?, 'pending', 0, ?, ?, ?)",
            delivery_rows,
        )
    return queued


def _write_postgres(
    conn: Connection, event_rows: list[tuple[Any, ...]], delivery_rows: list[tuple[Any, ...]]
) -> None:
    # One statement, one round trip: the events, their deliveries and the NOTIFY as
    # data-modifying CTEs (each runs exactly once, whatever the main query reads). Three
    # statements cost three round trips, which is most of a completion's client CPU.
    # Channels are per database, not per schema: the payload names the schema, so a worker
    # sharing a server with other deployments (or tests) can tell its own apart.
    events = ", ".join(["(?, ?, ?, ?, ?)"] * len(event_rows))
    sql = (
        "WITH new_events AS (INSERT INTO verihook_events"
        f" (id, verification_key, event_type, payload, created_at) VALUES {events})"
    )
    params: list[Any] = [value for row in event_rows for value in row]
    if not delivery_rows:
        conn.execute(sql + " SELECT 1", params)
        return
    deliveries = ", ".join(["(?, ?, ?, 'pending', 0, ?, ?, ?)"] * len(delivery_rows))
    sql += (
        ", new_deliveries AS (INSERT INTO verihook_deliveries"
        " (id, event_id, endpoint_id, state, attempts, next_attempt_at, created_at,"
        f" updated_at) VALUES {deliveries})"
        " SELECT pg_notify(?, current_schema())"
    )
    params.extend(value for row in delivery_rows for value in row)
    params.append(NOTIFY_CHANNEL)
    conn.execute(sql, params)


def _subscribed(event_type: EventType, event_types: frozenset[str]) -> bool:
    return event_type.value in event_types
