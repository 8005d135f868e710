"""Handlers in serverless functions: run them before the function returns, bounded.

A Lambda or Cloud Functions instance is frozen (or its CPU throttled) as soon as it answers,
so a background dispatcher cannot be trusted to run handlers after the response. What a user
of ``@receiver.on(...)`` expects is that the handler runs for the webhook that arrived, so by
default the adapter starts the receiver's dispatcher on the first invocation and, after an
event is stored, waits (at most ``handler_wait`` seconds, and never past the platform's own
deadline) until each of that event's handler runs has been attempted once. The answer is
still 200 whatever the handlers do: the event is stored, a failed run is retried with backoff
by whichever invocation is alive when it is due, or by any long-running ``Receiver`` (e.g. a
``verihook`` worker) sharing the store. With ``run_handlers=False`` the function only stores,
and such a process runs every handler.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from verihook.exceptions import StoreUnavailable
from verihook.receiver.receiver import STORED, Receiver, Reply

__all__ = ["HandlerPolicy"]

_POLL = 0.01


class HandlerPolicy:
    def __init__(self, receiver: Receiver, *, run_handlers: bool, handler_wait: float) -> None:
        self.receiver = receiver
        self.run_handlers = run_handlers
        self.handler_wait = handler_wait

    def before(self) -> None:
        """Start the dispatcher (idempotent) so it is awake when the event is stored."""
        if not self.run_handlers:
            return
        try:
            self.receiver.start()
        except StoreUnavailable:
            pass  # receive_sync answers 503; the next invocation tries again

    def after(self, headers: Mapping[str, str], body: bytes, reply: Reply, budget: float) -> None:
        """Wait until the stored event's handler runs were each attempted, or time is up.

        ``headers`` and ``body`` are no longer read: the stored event's number comes with
        the reply (``receive_sync`` fills ``reply.seq``), so nothing is decoded twice.
        """
        # A duplicate enqueued nothing: nothing to wait for.
        seq = reply.seq
        if not self.run_handlers or reply != STORED or seq is None or not self.receiver.handlers:
            return
        deadline = time.monotonic() + min(self.handler_wait, budget)
        try:
            while time.monotonic() < deadline:
                runs = self.receiver.runs(seq)
                if all(run.state != "pending" or run.last_error is not None for run in runs):
                    return
                time.sleep(_POLL)
        except StoreUnavailable:
            return  # the event is stored; its runs are due in the inbox for the next try
