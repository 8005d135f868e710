"""Group commit: many small write jobs share one transaction and one fsync.

A durable commit costs an fsync (~0.4 ms on SQLite with synchronous=FULL), so one transaction
per request caps a receiver at a few thousand requests a second. Here a single writer thread
takes every job waiting, runs each in its own savepoint (one failing job fails alone), commits
once, and only then resolves the callers' futures: nobody hears "stored" before the commit.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from verihook.exceptions import StoreUnavailable
from verihook.store.database import Connection, Database

__all__ = ["GroupCommitter", "WriteJob"]

T = TypeVar("T")
WriteJob = Callable[[Connection], T]
# A job, its caller's future, and whether the answer must wait until the commit is on disk
# (always so here; SqliteWalWriter can answer non-durable jobs at COMMIT).
QueuedJob = tuple[WriteJob[Any], Future[Any], bool]

log = logging.getLogger("verihook.store")

_STOP = object()


class GroupCommitter:
    """A writer thread owning one connection. ``submit`` from any thread, ``run`` from asyncio."""

    def __init__(
        self,
        database: Database,
        max_batch: int = 512,
        name: str = "verihook-writer",
        setup: Callable[[Connection], None] | None = None,
    ):
        self.database = database
        self.max_batch = max_batch
        # Run on every new connection (the first and each after a reconnect): session
        # settings that would otherwise cost a statement per transaction.
        self.setup = setup
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._conn: Connection | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def submit(self, job: WriteJob[T]) -> Future[T]:
        future: Future[T] = Future()
        if self._closed:
            future.set_exception(StoreUnavailable("the store is closed"))
            return future
        self._jobs.put((job, future, True))
        return future

    async def run(self, job: WriteJob[T]) -> T:
        return await asyncio.wrap_future(self.submit(job))

    def call(self, job: WriteJob[T], timeout: float | None = None) -> T:
        return self.submit(job).result(timeout)

    def close(self, timeout: float = 10.0) -> None:
        """Finish every job already submitted, then stop."""
        if self._closed:
            return
        self._closed = True
        self._jobs.put(_STOP)
        self._thread.join(timeout)

    # -- the writer thread ---------------------------------------------------------------

    def _loop(self) -> None:
        stopping = False
        while not stopping:
            first = self._jobs.get()
            if first is _STOP:
                break
            batch = [first]
            while len(batch) < self.max_batch:
                try:
                    item = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stopping = True
                    break
                batch.append(item)
            self._commit(batch)
        self._close_connection()

    def _close_connection(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _commit(self, batch: list[QueuedJob]) -> None:
        outcomes: list[tuple[bool, Any]] = []
        try:
            conn = self._connection()
            if len(batch) == 1:
                # Alone, a job needs no savepoint: its transaction rolls back if it fails.
                # Two statements fewer, which on PostgreSQL are two round trips (a lone
                # claim or record is the usual batch at moderate rates).
                outcomes.append(self._run_alone(conn, batch[0][0]))
            else:
                with conn.transaction():
                    for job, _, _ in batch:
                        try:
                            with conn.savepoint():
                                outcomes.append((True, job(conn)))
                        except StoreUnavailable:
                            raise
                        except Exception as exc:
                            outcomes.append((False, exc))
        except StoreUnavailable as exc:
            self._drop_connection()
            for _, future, _ in batch:
                future.set_exception(exc)
            return
        except Exception as exc:  # a bug in a job's error path must not kill the writer
            log.exception("group commit failed")
            self._drop_connection()
            failure = StoreUnavailable(f"store write failed: {type(exc).__name__}")
            for _, future, _ in batch:
                future.set_exception(failure)
            return
        self._resolve(outcomes, batch)

    @staticmethod
    def _run_alone(conn: Connection, job: WriteJob[Any]) -> tuple[bool, Any]:
        try:
            with conn.transaction():
                return True, job(conn)
        except StoreUnavailable:
            raise
        except Exception as exc:
            return False, exc

    def _resolve(self, outcomes: list[tuple[bool, Any]], batch: list[QueuedJob]) -> None:
        for (ok, value), (_, future, _) in zip(outcomes, batch, strict=True):
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)

    def _connection(self) -> Connection:
        if self._conn is None:
            conn = self.database.connect()
            if self.setup is not None:
                try:
                    self.setup(conn)
                except BaseException:
                    conn.close()
                    raise
            self._conn = conn
        return self._conn

    def _drop_connection(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:
                pass
            self._conn = None
        # Do not spin on a store that is down: the callers get 503 and retry anyway.
        time.sleep(0.05)
