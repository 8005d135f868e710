"""The SQLite worker's store writer: claims answered at COMMIT, attempt records after the fsync.

The store's GroupCommitter answers every job after a durable commit. A claim needs no
durability (a claim lost in a power cut only un-leases rows, which fall due again), yet it
waited for the fsync it shared with the attempt records, and the slots it was to fill sat idle
meanwhile. Here a batch commits without syncing (WAL with synchronous=NORMAL: the frames are in
the file, safe from a killed process, not yet from a power cut); claims are answered at once,
and a second thread fsyncs the WAL, overlapping the next batch, before the durable jobs (the
attempt records) are answered.

Order is kept: jobs run in the order submitted, so a claim commits in the same transaction as,
or a later one than, every record submitted before it. A worker killed at any point therefore
holds at most ``concurrency`` leases without their record (the bound the SIGKILL test checks),
and since SQLite replays the WAL as a prefix, a power cut that keeps a claim keeps every record
before it as well.
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
from verihook.store.database import Connection, SqliteDatabase
from verihook.store.wal_writer import fsync_wal

__all__ = ["SqliteDeliveryWriter"]

T = TypeVar("T")
Job = Callable[[Connection], T]

log = logging.getLogger("verihook.delivery")

_STOP = object()


class SqliteDeliveryWriter:
    """One writer thread and one fsync thread over one SQLite connection.

    ``submit(job)`` resolves once the job's effects are on disk; ``submit(job, durable=False)``
    once they are committed (visible to every reader, kept if this process is killed).
    """

    def __init__(
        self, database: SqliteDatabase, max_batch: int = 512, name: str = "verihook-delivery"
    ) -> None:
        self.database = database
        self.max_batch = max_batch
        self._wal_path = f"{database.path}-wal"
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._conn: Connection | None = None
        self._closed = False
        self._unsynced: list[Future[Any]] = []
        self._unsynced_values: list[Any] = []
        self._sync_wanted = threading.Condition()
        self._writer_done = False
        self._writer = threading.Thread(target=self._write_loop, name=f"{name}-writer", daemon=True)
        self._syncer = threading.Thread(target=self._sync_loop, name=f"{name}-fsync", daemon=True)
        self._writer.start()
        self._syncer.start()

    def submit(self, job: Job[T], *, durable: bool = True) -> Future[T]:
        future: Future[T] = Future()
        if self._closed:
            future.set_exception(StoreUnavailable("the store is closed"))
            return future
        self._jobs.put((job, future, durable))
        return future

    async def run(self, job: Job[T], *, durable: bool = True) -> T:
        return await asyncio.wrap_future(self.submit(job, durable=durable))

    def close(self, timeout: float = 10.0) -> None:
        """Finish (and sync) every job already submitted, then stop."""
        if self._closed:
            return
        self._closed = True
        self._jobs.put(_STOP)
        self._writer.join(timeout)
        self._syncer.join(timeout)

    # -- the writer thread ---------------------------------------------------------------

    def _write_loop(self) -> None:
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
        with self._sync_wanted:
            self._writer_done = True
            self._sync_wanted.notify()
        if self._conn is not None:
            self._conn.close()

    def _commit(self, batch: list[tuple[Job[Any], Future[Any], bool]]) -> None:
        outcomes: list[tuple[bool, Any]] = []
        try:
            conn = self._connection()
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
            log.exception("delivery store write failed")
            self._drop_connection()
            failure = StoreUnavailable(f"store write failed: {type(exc).__name__}")
            for _, future, _ in batch:
                future.set_exception(failure)
            return
        to_sync: list[tuple[Future[Any], Any]] = []
        for (ok, value), (_, future, durable) in zip(outcomes, batch, strict=True):
            if not ok:
                future.set_exception(value)
            elif durable:
                to_sync.append((future, value))
            else:
                future.set_result(value)
        if to_sync:
            with self._sync_wanted:
                for future, value in to_sync:
                    self._unsynced.append(future)
                    self._unsynced_values.append(value)
                self._sync_wanted.notify()

    def _connection(self) -> Connection:
        if self._conn is None:
            conn = self.database.connect()
            # Commits write the WAL without syncing it; the fsync thread makes them durable
            # before anyone is told so. (NORMAL rather than OFF: SQLite still syncs the WAL
            # before a checkpoint copies it into the database, so the file stays consistent.)
            conn.execute("PRAGMA synchronous=NORMAL")
            self._conn = conn
        return self._conn

    def _drop_connection(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:
                pass
            self._conn = None
        time.sleep(0.05)  # do not spin on a store that is down

    # -- the fsync thread ----------------------------------------------------------------

    def _sync_loop(self) -> None:
        while True:
            with self._sync_wanted:
                while not self._unsynced and not self._writer_done:
                    self._sync_wanted.wait()
                if not self._unsynced:
                    return  # the writer has stopped and everything is answered
                futures, self._unsynced = self._unsynced, []
                values, self._unsynced_values = self._unsynced_values, []
            try:
                self._fsync_wal()
            except OSError as exc:
                failure = StoreUnavailable(f"cannot sync the SQLite WAL: {exc.strerror}")
                for future in futures:
                    future.set_exception(failure)
                continue
            for future, value in zip(futures, values, strict=True):
                future.set_result(value)

    def _fsync_wal(self) -> None:
        # Everything the writer committed before these jobs were queued is in the WAL file.
        # The WAL exists while our connection is open (it committed), and is reused.
        fsync_wal(self._wal_path)
