"""The outbox: a state change's events and their deliveries, written in the caller's transaction.

Called inside the same transaction as the verification update, so an event exists exactly when
its state change does, and every subscribed enabled endpoint has its delivery queued with it.
On PostgreSQL a NOTIFY in that transaction wakes the workers when (and only if) it commits;
its payload is the schema (``current_schema()``) the deliveries were written to.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

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
        if conn.dialect == "postgres":
            # Channels are per database, not per schema: the payload names the schema, so a
            # worker sharing a server with other deployments (or tests) can tell its own apart.
            conn.execute("SELECT pg_notify(?, current_schema())", (NOTIFY_CHANNEL,))
    return queued


def _subscribed(event_type: EventType, event_types: frozenset[str]) -> bool:
    return event_type.value in event_types
