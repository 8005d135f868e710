"""Identifiers the provider hands out: events (the ``webhook-id``), deliveries, endpoints."""

from __future__ import annotations

import secrets
import time

__all__ = ["new_delivery_id", "new_endpoint_id", "new_event_id"]


def _token() -> str:
    # 12 hex digits of milliseconds, then 15 random bytes (20 url-safe characters, 120 bits:
    # unguessable, never colliding). Ids made later sort later, so every B-tree keyed on them
    # (the primary keys, attempts by delivery, deliveries by event) grows at its right edge
    # instead of dirtying a random page per insert. The price: an id shows when it was made,
    # to the millisecond, as the headers' webhook-timestamp already does.
    return f"{time.time_ns() // 1_000_000:012x}{secrets.token_urlsafe(15)}"


def new_event_id() -> str:
    """``msg_...``: sent as ``webhook-id``, so receivers deduplicate retries on it."""
    return "msg_" + _token()


def new_delivery_id() -> str:
    return "dlv_" + _token()


def new_endpoint_id() -> str:
    return "ep_" + _token()
