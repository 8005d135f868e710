"""The delivery engine: retry schedule, address policy, HTTP sender, queue, worker.

Only the light pieces are imported here: the migration registry imports this package, and
must not pull in the HTTP client.
"""

from __future__ import annotations

from verihook.delivery.retry import RetrySchedule
from verihook.delivery.schema import DELIVERY_MIGRATIONS

__all__ = ["DELIVERY_MIGRATIONS", "RetrySchedule"]
