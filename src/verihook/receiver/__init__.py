"""The integrator's end: a durable inbox, reconciliation of out-of-order events, handlers.

``Receiver`` is the entry point (see ``verihook.receiver.receiver`` for usage); adapters for
web frameworks wrap ``Receiver.receive`` / ``Receiver.receive_sync`` and its ``Reply``.
"""

from __future__ import annotations

from verihook.receiver.handlers import Handler, Handlers
from verihook.receiver.inbox import HandlerRun, InboxEvent, Stored
from verihook.receiver.receiver import Receiver, Reply
from verihook.receiver.reconcile import VerificationState, reconcile
from verihook.receiver.retry import HandlerRetry

__all__ = [
    "Handler",
    "HandlerRetry",
    "HandlerRun",
    "Handlers",
    "InboxEvent",
    "Receiver",
    "Reply",
    "Stored",
    "VerificationState",
    "reconcile",
]
