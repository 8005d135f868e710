"""The delivery engine: retry schedule, address policy, HTTP sender, worker."""

from __future__ import annotations
