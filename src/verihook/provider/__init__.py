"""The provider side: verifications' lifecycle, automation thresholds, endpoints, the outbox."""

from __future__ import annotations

from verihook.provider.endpoints import Endpoint
from verihook.provider.outbox import NOTIFY_CHANNEL
from verihook.provider.provider import Provider, SyncProvider
from verihook.provider.thresholds import Thresholds
from verihook.provider.verifications import Decision, Stage, Verification

__all__ = [
    "NOTIFY_CHANNEL",
    "Decision",
    "Endpoint",
    "Provider",
    "Stage",
    "SyncProvider",
    "Thresholds",
    "Verification",
]
