"""The integrator's end: a durable inbox, reconciliation of out-of-order events, handlers."""

from __future__ import annotations

from verihook.receiver.reconcile import VerificationState, reconcile

__all__ = ["VerificationState", "reconcile"]
