"""Runs handlers from the inbox, after the 2xx: claim due runs, call them, record the outcome.

The dispatcher owns a thread with its own event loop, so it works the same under ASGI, WSGI
(Flask, Django) and the CLI: async handlers are awaited there, sync ones run in its thread
pool. A failing handler is retried with backoff and never holds up any other run.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

import orjson

from verihook.exceptions import StoreUnavailable
from verihook.format import parse_event
from verihook.receiver import inbox
from verihook.receiver.handlers import Handlers
from verihook.receiver.reconcile import VerificationState
from verihook.receiver.retry import HandlerRetry
from verihook.store import GroupCommitter

__all__ = ["Dispatcher"]

log = logging.getLogger("verihook.receiver")

_MAX_ERROR = 500


class Dispatcher:
    def __init__(
        self,
        committer: GroupCommitter,
        handlers: Handlers,
        *,
        retry: HandlerRetry,
        clock: Callable[[], float],
        handler_timeout: float,
        concurrency: int = 16,
        poll_interval: float = 1.0,
    ) -> None:
        self._committer = committer
        self._handlers = handlers
        self._retry = retry
        self._clock = clock
        self._timeout = handler_timeout
        # A run not finished within its lease (a crash) becomes due again.
        self._lease = handler_timeout + 5.0
        self._concurrency = concurrency
        self._poll = poll_interval
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wakeup: asyncio.Event | None = None
        self._woken = False
        self._stopping = False
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, name="verihook-dispatcher", daemon=True)
        self._executor = ThreadPoolExecutor(concurrency, thread_name_prefix="verihook-handler")

    def start(self) -> None:
        self._thread.start()
        self._ready.wait(10)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop claiming; give runs in progress until ``timeout`` to finish."""
        self._stopping = True
        self.wake()
        self._thread.join(timeout)
        self._executor.shutdown(wait=False, cancel_futures=True)

    def wake(self) -> None:
        """New runs were stored: look now rather than at the next poll. Any thread."""
        loop, wakeup = self._loop, self._wakeup
        if loop is None or wakeup is None or self._woken:
            return
        self._woken = True
        try:
            loop.call_soon_threadsafe(wakeup.set)
        except RuntimeError:  # the loop closed meanwhile
            pass

    # -- the dispatcher thread -----------------------------------------------------------

    def _main(self) -> None:
        asyncio.run(self._run())

    async def _run(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wakeup = asyncio.Event()
        self._ready.set()
        running: set[asyncio.Task[None]] = set()
        while not self._stopping:
            self._woken = False
            self._wakeup.clear()
            free = self._concurrency - len(running)
            claimed: list[inbox.ClaimedRun] = []
            # Without handlers there is nothing to run (and runs left by another process's
            # handlers wait for a process that has them, rather than failing here).
            if free > 0 and len(self._handlers):
                try:
                    now = self._clock()
                    claimed = await self._committer.run(
                        partial(inbox.claim_due_runs, now=now, limit=free, lease=self._lease)
                    )
                except StoreUnavailable as exc:
                    log.warning("cannot read handler runs: %s", exc)
                except Exception:
                    log.exception("cannot read handler runs")
            for run in claimed:
                task = asyncio.create_task(self._execute(run))
                running.add(task)
                task.add_done_callback(running.discard)
            if claimed and len(claimed) == free:
                # There may be more due: claim again as soon as a slot frees up.
                await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                continue
            try:
                await asyncio.wait_for(self._wakeup.wait(), self._poll)
            except TimeoutError:
                pass
        if running:
            await asyncio.wait(running, timeout=5.0)

    async def _execute(self, run: inbox.ClaimedRun) -> None:
        handler = self._handlers.get(run.handler)
        try:
            if handler is None:
                raise LookupError(f"no handler named {run.handler!r} is registered")
            args = _arguments(handler.kind, run)
            if handler.is_async:
                await asyncio.wait_for(handler.function(*args), self._timeout)
            else:
                loop = asyncio.get_running_loop()
                call = loop.run_in_executor(self._executor, handler.function, *args)
                await asyncio.wait_for(call, self._timeout)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"[:_MAX_ERROR]
            delay = self._retry.delay(run.attempts)
            now = self._clock()
            next_run_at = None if delay is None else now + delay
            if next_run_at is None:
                log.warning(
                    "handler %s failed for good on event %d: %s", run.handler, run.event_seq, error
                )
            else:
                log.info(
                    "handler %s failed on event %d (attempt %d): %s",
                    run.handler,
                    run.event_seq,
                    run.attempts,
                    error,
                )
            await self._record(
                lambda c: inbox.schedule_retry(
                    c, run.event_seq, run.handler, error, next_run_at, now
                )
            )
            return
        now = self._clock()
        await self._record(lambda c: inbox.finish_run(c, run.event_seq, run.handler, now))

    async def _record(self, job: Callable[[Any], None]) -> None:
        try:
            await self._committer.run(job)
        except Exception as exc:
            # The lease runs out and the run is tried again: at least once, never lost.
            log.warning("cannot record a handler outcome: %s", exc)


def _arguments(kind: str, run: inbox.ClaimedRun) -> tuple[Any, ...]:
    if kind == "change":
        if run.argument is None:
            raise ValueError("change run without its states")
        states = orjson.loads(run.argument)
        old = None if states["old"] is None else VerificationState.from_dict(states["old"])
        return (old, VerificationState.from_dict(states["new"]))
    return (parse_event(run.payload),)
