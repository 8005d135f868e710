"""Identifiers the provider hands out: events (the ``webhook-id``), deliveries, endpoints."""

from __future__ import annotations

import secrets

__all__ = ["new_delivery_id", "new_endpoint_id", "new_event_id"]


def _token() -> str:
    # 21 random bytes -> 28 url-safe characters, 168 bits: unguessable and never colliding.
    return secrets.token_urlsafe(21)


def new_event_id() -> str:
    """``msg_...``: sent as ``webhook-id``, so receivers deduplicate retries on it."""
    return "msg_" + _token()


def new_delivery_id() -> str:
    return "dlv_" + _token()


def new_endpoint_id() -> str:
    return "ep_" + _token()
