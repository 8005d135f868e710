"""The provider's tables: verifications, endpoints, events (the outbox) and their deliveries.

Scheduler times (``*_at``) are unix seconds as floats; the wire timestamps of a verification
(``created``, ``updated``, ``processed``) are integer seconds as Passbase sends them.
Secrets are stored as given: the sender must encrypt and sign with them.
"""

from __future__ import annotations

from verihook.store.migrations import Migration

__all__ = ["PROVIDER_MIGRATIONS"]

_TABLES = """
CREATE TABLE verihook_verifications (
    key TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    score DOUBLE PRECISION,
    created BIGINT NOT NULL,
    updated BIGINT NOT NULL,
    processed BIGINT,
    completed_at DOUBLE PRECISION,
    reviewed_at DOUBLE PRECISION
);
CREATE TABLE verihook_endpoints (
    id TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    event_types TEXT NOT NULL,
    encryption_secret TEXT,
    signing_secret TEXT NOT NULL,
    previous_signing_secret TEXT,
    previous_signing_secret_until DOUBLE PRECISION,
    enabled BOOLEAN NOT NULL,
    disabled_reason TEXT,
    retry_schedule TEXT,
    max_in_flight INTEGER NOT NULL DEFAULT 16,
    rate_limit DOUBLE PRECISION,
    failing_since DOUBLE PRECISION,
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    circuit_open_until DOUBLE PRECISION,
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL
);
CREATE TABLE verihook_events (
    id TEXT PRIMARY KEY,
    verification_key TEXT NOT NULL,
    event_type TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX verihook_events_key ON verihook_events (verification_key);
CREATE TABLE verihook_deliveries (
    id TEXT PRIMARY KEY,
    event_id TEXT NOT NULL REFERENCES verihook_events (id),
    endpoint_id TEXT NOT NULL REFERENCES verihook_endpoints (id),
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at DOUBLE PRECISION NOT NULL,
    lease_owner TEXT,
    lease_expires_at DOUBLE PRECISION,
    last_status_code INTEGER,
    last_error TEXT,
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    completed_at DOUBLE PRECISION
);
CREATE INDEX verihook_deliveries_due ON verihook_deliveries (next_attempt_at)
    WHERE state = 'pending';
CREATE INDEX verihook_deliveries_endpoint ON verihook_deliveries (endpoint_id, state);
CREATE INDEX verihook_deliveries_event ON verihook_deliveries (event_id);
CREATE TABLE verihook_attempts (
    delivery_id TEXT NOT NULL REFERENCES verihook_deliveries (id),
    number INTEGER NOT NULL,
    started_at DOUBLE PRECISION NOT NULL,
    latency_ms DOUBLE PRECISION,
    status_code INTEGER,
    error TEXT,
    response_body TEXT,
    outcome TEXT NOT NULL,
    PRIMARY KEY (delivery_id, number)
);
CREATE TABLE verihook_provider_settings (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
)
"""

PROVIDER_MIGRATIONS = [
    # The same DDL reads right in both dialects (BOOLEAN is an integer affinity in SQLite).
    Migration(domain="provider", version=1, name="initial", sqlite=_TABLES, postgres=_TABLES),
]
