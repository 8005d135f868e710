"""The delivery domain's own migrations, on top of the provider's tables (its queue).

None yet: the provider's indexes (``endpoint_id, state`` and the partial due index) serve the
claim. Note for whoever adds one: ``migrate`` orders steps by (domain, version), and
"delivery" sorts before "provider", so a step here must not assume the provider's tables
exist on a fresh database.
"""

from __future__ import annotations

from verihook.store.migrations import Migration

__all__ = ["DELIVERY_MIGRATIONS"]

DELIVERY_MIGRATIONS: list[Migration] = []
