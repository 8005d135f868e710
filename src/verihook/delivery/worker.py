"""The delivery worker: claim due deliveries, POST them concurrently, record the outcomes.

One asyncio loop drives up to ``concurrency`` attempts. Finished attempts' records wait (at
most a few ms) for the next claim and are written just before it, in the same writer queue,
so a batch of outcomes and the claim that refills their slots share one transaction. On
SQLite the writer answers the claim at COMMIT and the records after their fsync
(store/wal_writer.py); on PostgreSQL claims run in short transactions of their own. On
PostgreSQL a LISTEN connection wakes the loop the moment an event commits; polling covers
everything else (and is all SQLite has).

Shutdown (``stop()``, SIGTERM, SIGINT): no new claims; attempts in flight get ``grace``
seconds to finish and be recorded, the rest are released back to the queue with their
attempt unspent. Nothing is lost; an attempt cut off mid-request may reach the endpoint
again later (at least once), but is counted once.

``verihook worker`` also tunes the process's garbage collector (cli/gc_tuning.py: ~10% of
its CPU went there); a process of your own that runs a ``Worker`` may want the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

import orjson

from verihook.delivery.address_policy import AddressPolicy
from verihook.delivery.health import CircuitBreaker, RateLimiter
from verihook.delivery.metrics import WorkerMetrics
from verihook.delivery.outcome import Next, decide
from verihook.delivery.queue import (
    NOTIFY_CHANNEL,
    AttemptRecord,
    ClaimedDelivery,
    claim,
    next_due,
    queue_stats,
    record,
    release,
)
from verihook.delivery.retry import RetrySchedule
from verihook.delivery.schema import DELIVERY_MIGRATIONS
from verihook.delivery.sender import DEFAULT_TIMEOUT, Sender
from verihook.exceptions import InvalidInput, StoreUnavailable
from verihook.store import GroupCommitter, migrate, open_database
from verihook.store.database import Connection, SqliteDatabase
from verihook.store.provider_schema import PROVIDER_MIGRATIONS
from verihook.store.wal_writer import SqliteWalWriter

__all__ = ["Worker"]

log = logging.getLogger("verihook.delivery")

Clock = Callable[[], float]

_RECORD_DELAY = 0.005


class Worker:
    def __init__(
        self,
        database_url: str,
        *,
        concurrency: int = 64,
        allow_private_networks: bool = False,
        clock: Clock = time.time,
        schedule: RetrySchedule | None = None,
        breaker: CircuitBreaker | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        poll_interval: float | None = None,
        lease_seconds: float | None = None,
        grace: float = 10.0,
        metrics: WorkerMetrics | None = None,
        sender: Sender | None = None,
        owner: str | None = None,
        listen: bool = True,
    ) -> None:
        if not 1 <= concurrency <= 10_000:
            raise InvalidInput("concurrency must be between 1 and 10000")
        if not 0 < timeout <= 3600:
            raise InvalidInput("timeout must be between 0 and 3600 seconds")
        self.database = open_database(database_url)
        self.concurrency = concurrency
        self.clock = clock
        self.schedule = schedule if schedule is not None else RetrySchedule()
        self.breaker = breaker if breaker is not None else CircuitBreaker()
        self.timeout = timeout
        postgres = self.database.dialect == "postgres"
        self.poll_interval = (
            poll_interval if poll_interval is not None else (2.0 if postgres else 0.25)
        )
        # Long enough that a live worker never loses a lease: the attempt's timeout, the
        # grace at shutdown, and room for a slow commit.
        self.lease_seconds = lease_seconds if lease_seconds is not None else timeout + grace + 30
        self.grace = grace
        self.metrics = metrics
        self.policy = AddressPolicy(allow_private=allow_private_networks)
        self.sender = (
            sender if sender is not None else Sender(self.policy, timeout=timeout, clock=clock)
        )
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.listen = listen and postgres

        self._committer: GroupCommitter | None = None
        self._claimer: GroupCommitter | None = None
        self._tasks: dict[asyncio.Task[None], ClaimedDelivery] = {}
        self._changed = asyncio.Event()
        self._woken = False
        self._stopping = False
        self._buffer: list[AttemptRecord] = []
        self._buffer_lock = threading.Lock()
        self._flush_pending = False
        self._flush_timer: asyncio.TimerHandle | None = None
        # How long a finished attempt's record may wait for a claim to carry it. PostgreSQL
        # claims run on a connection of their own, so waiting would buy no shared transaction
        # (measured: no throughput change) and only add to the event-to-delivery latency.
        self._record_delay = 0.0 if postgres else _RECORD_DELAY
        self._flushes: set[Future[int]] = set()
        self._next_due: float | None = None
        self._limiters: dict[str, RateLimiter] = {}
        self._schedules: dict[str | None, RetrySchedule] = {}
        self._listener: asyncio.Task[None] | None = None
        self._stats_task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # After completions, claim once this many slots are free (not one claim per slot).
        self._claim_batch = max(1, concurrency // 4)
        self.delivered = 0  # attempts recorded by this worker, for tests and benchmarks

    # --- lifecycle -------------------------------------------------------------------------

    async def __aenter__(self) -> Worker:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        await asyncio.to_thread(
            migrate, self.database, [*PROVIDER_MIGRATIONS, *DELIVERY_MIGRATIONS]
        )
        if isinstance(self.database, SqliteDatabase):
            # Claims answered at COMMIT, records after the fsync (see store/wal_writer.py).
            self._committer = SqliteWalWriter(self.database, name="verihook-delivery-writer")
        else:
            self._committer = GroupCommitter(self.database, name="verihook-delivery-writer")
        if self.database.dialect == "postgres":
            # Claims hold the claim lock until they commit: give them short transactions of
            # their own instead of a share of a batch of records. (SQLite has one writer:
            # a second connection would only queue on its lock.)
            self._claimer = GroupCommitter(
                self.database, name="verihook-delivery-claimer", setup=_claims_skip_wal_flush
            )
        await self.sender.__aenter__()
        if self.listen:
            self._listener = asyncio.create_task(self._listen())
        if self.metrics is not None:
            self._stats_task = asyncio.create_task(self._watch_stats())

    async def close(self) -> None:
        self._stopping = True
        await self._shutdown_in_flight()
        for task in (self._listener, self._stats_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
        await self._flush_all()
        await self.sender.close()
        if self._claimer is not None:
            await asyncio.to_thread(self._claimer.close)
            self._claimer = None
        if self._committer is not None:
            await asyncio.to_thread(self._committer.close)
            self._committer = None

    def stop(self) -> None:
        """Ask the loop to stop claiming and shut down (thread-safe, signal-safe)."""
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        # From any thread but the loop's own (the main thread included, when the worker
        # runs in a thread of its own), through the loop: asyncio.Event is not thread-safe.
        if self._loop is not None and running is not self._loop:
            self._loop.call_soon_threadsafe(self._request_stop)
        else:
            self._request_stop()

    def _request_stop(self) -> None:
        self._stopping = True
        self._changed.set()

    def wake(self) -> None:
        """Something is due now: claim without waiting for the next poll."""
        self._woken = True
        self._changed.set()

    async def run(self, *, drain: bool = False, handle_signals: bool = True) -> None:
        """Deliver until ``stop()`` (or SIGTERM/SIGINT), or with ``drain`` until nothing is due."""
        loop = asyncio.get_running_loop()
        installed = []
        if handle_signals and threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.add_signal_handler(sig, self._request_stop)
                    installed.append(sig)
        started_here = self._committer is None
        if started_here:
            await self.start()
        try:
            await self._loop_until(drain)
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)
            if started_here:
                await self.close()

    async def run_until_idle(self) -> None:
        await self.run(drain=True, handle_signals=False)

    # --- the loop --------------------------------------------------------------------------

    async def _loop_until(self, drain: bool) -> None:
        queue_empty = False  # the last claim found fewer due deliveries than free slots
        store_backoff = 0.0
        batch = self._claim_batch
        while not self._stopping:
            if drain and queue_empty and not self._tasks:
                if await self._idle():
                    return
                queue_empty = False
                continue
            free = self.concurrency - len(self._tasks)
            fresh = self._woken or self._due_now()
            # Claim in batches: after a completion wait until a quarter of the slots are
            # free, unless there may be new work (woken, polled, a retry due) or none runs.
            if (
                free > 0
                and (fresh or not queue_empty)
                and (fresh or free >= batch or not self._tasks)
            ):
                self._woken = False
                try:
                    claimed, due = await self._claim(free)
                    store_backoff = 0.0
                except StoreUnavailable as exc:
                    store_backoff = min(max(store_backoff * 2, 0.5), 10.0)
                    log.warning("store unavailable, retrying in %.1f s: %s", store_backoff, exc)
                    await self._wait(store_backoff)
                    continue
                self._spawn(claimed)
                queue_empty = len(claimed) < free
                if queue_empty:
                    # A due time already past belongs to something we cannot claim now
                    # (open circuit, full endpoint): leave that to the poll.
                    now = self.clock()
                    self._next_due = due if due is not None and due > now else None
            await self._wait(self._sleep_for() if queue_empty else None)

    def _spawn(self, claimed: list[ClaimedDelivery]) -> None:
        for delivery in claimed:
            task = asyncio.create_task(self._attempt(delivery))
            self._tasks[task] = delivery
            task.add_done_callback(self._finished)

    def _due_now(self) -> bool:
        return self._next_due is not None and self._next_due <= self.clock()

    def _sleep_for(self) -> float:
        wait = self.poll_interval
        if self._next_due is not None:
            wait = min(wait, max(0.0, self._next_due - self.clock()))
        return max(wait, 0.001)

    async def _wait(self, timeout: float | None) -> None:
        if not self._changed.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout)
        if timeout is not None and not self._changed.is_set():
            self._woken = True  # a poll: look at the queue again
        self._changed.clear()

    async def _idle(self) -> bool:
        """Drain mode: idle once every record is written and nothing is due."""
        await self._flush_all()
        claimed, _ = await self._claim(self.concurrency)
        self._spawn(claimed)
        return not claimed

    async def _claim(self, limit: int) -> tuple[list[ClaimedDelivery], float | None]:
        assert self._committer is not None
        owner, lease, breaker, clock = self.owner, self.lease_seconds, self.breaker, self.clock

        def job(conn: Any) -> tuple[list[ClaimedDelivery], float | None]:
            now = clock()
            got = claim(
                conn, owner=owner, now=now, limit=limit, lease_seconds=lease, breaker=breaker
            )
            return got, (next_due(conn) if len(got) < limit else None)

        # Records of finished attempts go first: the claim refills their slots, so it must
        # not commit before them (a kill in between would leave more leases than slots).
        self._flush_now()
        if isinstance(self._committer, SqliteWalWriter):
            return await self._committer.run(job, durable=False)
        return await (self._claimer or self._committer).run(job)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.pop(task, None)
        # Wake the loop only when it would act: enough slots free for a claim, or none
        # running (drain, shutdown). A wake-up per completion cost the loop a turn each.
        if self.concurrency - len(self._tasks) >= self._claim_batch or not self._tasks:
            self._changed.set()
        if not task.cancelled() and task.exception() is not None:
            log.error("delivery task failed: %s", type(task.exception()).__name__)

    # --- one attempt -----------------------------------------------------------------------

    async def _attempt(self, delivery: ClaimedDelivery) -> None:
        if delivery.rate_limit:
            limiter = self._limiters.get(delivery.endpoint_id)
            if limiter is None or limiter.rate != delivery.rate_limit:
                limiter = self._limiters[delivery.endpoint_id] = RateLimiter(delivery.rate_limit)
            wait = limiter.take(self.clock())
            if wait > 1.0:
                # Over the endpoint's rate: back to the queue for later, no attempt spent.
                await self._release([delivery], at=self.clock() + wait)
                return
            if wait > 0:
                await asyncio.sleep(wait)
        started = self.clock()
        result = await self.sender.send(delivery.request())
        now = self.clock()
        schedule = self._schedule_for(delivery.retry_schedule)
        decision = decide(result.outcome, delivery.attempt, now, schedule, result.retry_after)
        self._log_attempt(delivery, result.outcome.value, result.status_code, result.latency_ms,
                          result.error, decision.state.value, decision.next_attempt_at)  # fmt: skip
        if decision.state is Next.RETRY and decision.next_attempt_at is not None:
            if self._next_due is None or decision.next_attempt_at < self._next_due:
                self._next_due = decision.next_attempt_at
        if self.metrics is not None:
            self.metrics.attempts.labels(result.outcome.value).inc()
            self.metrics.attempt_seconds.observe(result.latency_ms / 1000.0)
        self._add_record(AttemptRecord(delivery, started, result, decision))

    def _schedule_for(self, text: str | None) -> RetrySchedule:
        schedule = self._schedules.get(text)
        if schedule is None:
            try:
                schedule = RetrySchedule.parse(text, default=self.schedule)
            except InvalidInput:
                schedule = self.schedule
            self._schedules[text] = schedule
        return schedule

    def _log_attempt(
        self,
        delivery: ClaimedDelivery,
        outcome: str,
        status: int | None,
        latency_ms: float,
        error: str | None,
        state: str,
        next_at: float | None,
    ) -> None:
        if not log.isEnabledFor(logging.INFO):
            return
        # Ids, numbers and our own error texts only: never a URL (it may hold a token),
        # never a secret, never a body.
        line = {
            "msg": "delivery attempt",
            "delivery": delivery.id,
            "event": delivery.event_id,
            "endpoint": delivery.endpoint_id,
            "attempt": delivery.attempt,
            "outcome": outcome,
            "status": status,
            "latency_ms": round(latency_ms, 1),
            "error": error,
            "state": state,
            "next_attempt_at": round(next_at, 3) if next_at is not None else None,
        }
        log.info(orjson.dumps(line).decode())

    # --- writing outcomes in batches -------------------------------------------------------

    def _add_record(self, rec: AttemptRecord) -> None:
        with self._buffer_lock:
            self._buffer.append(rec)
            if self._flush_pending or self._flush_timer is not None:
                return
        # Not written at once: the next claim writes it first, in its transaction, or the
        # timer does. One transaction per claim instead of one per few attempts.
        assert self._loop is not None
        self._flush_timer = self._loop.call_later(self._record_delay, self._flush_now)

    def _flush_now(self) -> None:
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        with self._buffer_lock:
            if not self._buffer or self._flush_pending:
                return
            self._flush_pending = True
        self._submit_flush()

    def _submit_flush(self) -> None:
        assert self._committer is not None
        breaker, clock = self.breaker, self.clock

        taken: list[AttemptRecord] = []

        def job(conn: Any) -> int:
            taken[:] = self._take_buffer()
            return record(conn, taken, clock(), breaker)

        future = self._committer.submit(job)
        self._flushes.add(future)
        future.add_done_callback(lambda f: self._flushed(f, taken))

    def _take_buffer(self) -> list[AttemptRecord]:
        with self._buffer_lock:
            batch, self._buffer = self._buffer, []
            self._flush_pending = False
        return batch

    def _flushed(self, future: Future[int], batch: list[AttemptRecord]) -> None:
        # Runs in the writer thread, after COMMIT (or the failure).
        self._flushes.discard(future)
        error = future.exception()
        if error is not None and not isinstance(error, StoreUnavailable):
            # Refused by the store, not an outage (a constraint, a bug): retrying would
            # fail for ever and hold the batch's other records with it.
            self._record_one_by_one(batch, error)
            return
        if error is not None:
            log.warning("recording %d attempts failed, retrying: %s", len(batch), error)
            with self._buffer_lock:
                self._buffer[:0] = batch
                retry = not self._flush_pending and self._committer is not None
                self._flush_pending = self._flush_pending or retry
            if retry:
                time.sleep(0.2)
                self._submit_flush()
            return
        self.delivered += len(batch)
        if self.metrics is not None:
            done = time.time()
            for r in batch:
                if r.decision.state is Next.SUCCEEDED:
                    self.metrics.delivery_seconds.observe(
                        max(0.0, done - r.delivery.event_created_at)
                    )

    def _record_one_by_one(self, batch: list[AttemptRecord], error: BaseException) -> None:
        if len(batch) > 1 and self._committer is not None:
            for rec in batch:
                self._submit_records([rec])
            return
        for rec in batch:
            # Dropped: the delivery keeps its lease, which expires, and it is tried again.
            log.error(
                "cannot record attempt %d of delivery %s (%s); it will be tried again when"
                " its lease expires",
                rec.delivery.attempt,
                rec.delivery.id,
                type(error).__name__,
            )

    def _submit_records(self, records: list[AttemptRecord]) -> None:
        assert self._committer is not None
        breaker, clock = self.breaker, self.clock
        future = self._committer.submit(lambda conn: record(conn, records, clock(), breaker))
        self._flushes.add(future)
        future.add_done_callback(lambda f: self._flushed(f, records))

    async def _flush_all(self) -> None:
        for _ in range(100):
            pending = list(self._flushes)
            if not pending:
                with self._buffer_lock:
                    if not self._buffer:
                        return
                self._flush_now()
                continue
            await asyncio.gather(*(asyncio.wrap_future(f) for f in pending), return_exceptions=True)

    # --- shutdown --------------------------------------------------------------------------

    async def _shutdown_in_flight(self) -> None:
        if not self._tasks:
            return
        tasks = list(self._tasks)
        _, still = await asyncio.wait(tasks, timeout=self.grace)
        cut_off = [self._tasks[t] for t in still if t in self._tasks]
        for task in still:
            task.cancel()
        await asyncio.gather(*still, return_exceptions=True)
        # Records of attempts that did finish are written first; then the rest go back.
        await self._flush_all()
        if cut_off:
            finished = set()
            with self._buffer_lock:
                finished = {r.delivery.id for r in self._buffer}
            await self._release([d for d in cut_off if d.id not in finished])

    async def _release(self, deliveries: list[ClaimedDelivery], at: float | None = None) -> None:
        if not deliveries or self._committer is None:
            return
        clock = self.clock
        await self._committer.run(lambda conn: release(conn, deliveries, clock(), at))

    # --- wake-ups and stats ----------------------------------------------------------------

    async def _listen(self) -> None:
        import psycopg

        while not self._stopping:
            try:
                conn = await psycopg.AsyncConnection.connect(
                    self.database.url, autocommit=True, connect_timeout=10
                )
                async with conn:
                    await conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    self.wake()  # anything committed while we were not listening
                    async for _ in conn.notifies():
                        self.wake()
            except psycopg.Error as exc:
                log.warning("LISTEN connection lost, polling meanwhile: %s", type(exc).__name__)
                await asyncio.sleep(1.0)

    async def _watch_stats(self) -> None:
        assert self.metrics is not None
        while True:
            try:
                stats = await asyncio.to_thread(self._read_stats)
                self.metrics.observe_stats(stats)
            except StoreUnavailable:
                pass
            await asyncio.sleep(5.0)

    def _read_stats(self) -> Any:
        with self.database.connection() as conn:
            return queue_stats(conn, self.clock())


def _claims_skip_wal_flush(conn: Connection) -> None:
    # The claimer's connection only claims, and a claim need not wait for its WAL flush: if
    # the server loses it in a crash, the rows are simply unleased and due again (at least
    # once holds), and the attempt's record, committed durably, flushes the claim before it.
    conn.execute("SET synchronous_commit TO OFF")
