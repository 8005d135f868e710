"""The delivery domain's own migrations, on top of the provider's tables (its queue).

Applied after the provider's (``migrate_all`` and the worker both order domains so). Two
indexes make every claim cost what it takes rather than the size of the backlog:
``endpoint_due`` finds an endpoint's due rows already in ``next_attempt_at`` order (before it,
each claim sorted every pending row of the endpoint), and ``leased`` holds only the rows in
flight, so counting an endpoint's in-flight deliveries against its cap reads just those.
The third takes writes off the worker's path (see ``_INDEX_SWAP``).
"""

from __future__ import annotations

from verihook.store.migrations import Migration

__all__ = ["DELIVERY_MIGRATIONS"]

_CLAIM_INDEXES = """
CREATE INDEX verihook_deliveries_endpoint_due
    ON verihook_deliveries (endpoint_id, next_attempt_at) WHERE state = 'pending';
CREATE INDEX verihook_deliveries_leased
    ON verihook_deliveries (endpoint_id, lease_expires_at) WHERE lease_owner IS NOT NULL
"""

# Every claim and every record rewrote this index's entry (next_attempt_at changes with each),
# and on PostgreSQL each of those non-HOT updates adds an entry to every index: one index
# fewer is one B-tree write fewer per claim and per record. Its one reader, the earliest due
# time, now takes each endpoint's first row from ``endpoint_due`` instead.
_DROP_GLOBAL_DUE = "DROP INDEX IF EXISTS verihook_deliveries_due"

# Every record changed ``state``, so SQLite moved each delivery's entry in the
# ``(endpoint_id, state)`` index. Its readers get indexes that a success never touches: the
# operator's list by endpoint (newest first) reads ``endpoint_created``, written once at insert;
# replaying an endpoint's failures reads ``failed``, which holds only those. And the attempts,
# keyed on (delivery_id, number) already, become a WITHOUT ROWID table: one B-tree per insert
# instead of the table and its primary key's index. benchmarks/queue_sql.py, claims and
# records of 16: 190k -> 174k instructions per delivery. (A WITHOUT ROWID deliveries table
# measured worse: each update rewrites a row keyed on text, and every index carries the key.)
_INDEX_SWAP = """
DROP INDEX verihook_deliveries_endpoint;
CREATE INDEX verihook_deliveries_endpoint_created ON verihook_deliveries (endpoint_id, created_at);
CREATE INDEX verihook_deliveries_failed
    ON verihook_deliveries (endpoint_id, completed_at) WHERE state = 'failed'
"""
# SQLite cannot change a table to WITHOUT ROWID in place: a copy, in the migration's
# transaction, so a failure leaves the old table as it was. Nothing references the attempts.
_LEANER_WRITES_SQLITE = (
    _INDEX_SWAP
    + """;
ALTER TABLE verihook_attempts RENAME TO verihook_attempts_rowid;
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
) WITHOUT ROWID;
INSERT INTO verihook_attempts (delivery_id, number, started_at, latency_ms, status_code,
    error, response_body, outcome)
    SELECT delivery_id, number, started_at, latency_ms, status_code, error, response_body,
    outcome FROM verihook_attempts_rowid;
DROP TABLE verihook_attempts_rowid
"""
)

DELIVERY_MIGRATIONS: list[Migration] = [
    Migration(
        domain="delivery",
        version=1,
        name="claim indexes",
        sqlite=_CLAIM_INDEXES,
        postgres=_CLAIM_INDEXES,
    ),
    Migration(
        domain="delivery",
        version=2,
        name="drop the global due index",
        sqlite=_DROP_GLOBAL_DUE,
        postgres=_DROP_GLOBAL_DUE,
    ),
    Migration(
        domain="delivery",
        version=3,
        name="indexes a success does not write; attempts without rowid",
        sqlite=_LEANER_WRITES_SQLITE,
        # On PostgreSQL every update of a delivery is non-HOT (indexed columns change) and
        # writes every index anyway: the swap only keeps the readers' indexes the same.
        postgres=_INDEX_SWAP,
    ),
]
