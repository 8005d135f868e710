"""The delivery domain's own migrations, on top of the provider's tables (its queue).

Applied after the provider's (``migrate_all`` and the worker both order domains so). Two
indexes make every claim cost what it takes rather than the size of the backlog:
``endpoint_due`` finds an endpoint's due rows already in ``next_attempt_at`` order (before it,
each claim sorted every pending row of the endpoint), and ``leased`` holds only the rows in
flight, so counting an endpoint's in-flight deliveries against its cap reads just those.
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
]
