"""A SQLite group committer whose batches can also run on the caller's thread, fsync apart.

The receiver's writer thread cost ~20 us a request on one core just by existing: the sqlite3
module lets go of the GIL around every statement step, and with the event loop runnable each
step can hand it the CPU and wait to get it back. Here the event loop runs its batch itself
(``submit_inline``), on the writer's connection, committing with synchronous=NORMAL (WAL
frames written, not synced: safe from a killed process, not yet from a power cut); a second
thread fsyncs the WAL and only then resolves the batch's future. One hand-off per batch.

As durable as synchronous=FULL for everyone answered: a future resolves only after an fsync
of the WAL that began after its commit, and SQLite replays the WAL as a prefix, so a power
cut keeps every answered commit. (NORMAL rather than OFF: SQLite still syncs the WAL before a
checkpoint copies it into the database file, which stays consistent.) Jobs from other threads
(``submit``) go through the writer thread as in ``GroupCommitter``, answered the same way.

``submit(job, durable=False)`` is answered at COMMIT instead: for work that needs no
durability, like the delivery worker's claims (a claim lost in a power cut only un-leases
rows, which fall due again), so the slots it fills do not wait for an fsync. Jobs keep their
order, so such a job commits with or after every job submitted before it, and since SQLite
replays the WAL as a prefix, a power cut that keeps it keeps those too.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import threading
from concurrent.futures import Future
from typing import Any, TypeVar

from verihook.exceptions import StoreUnavailable
from verihook.store.database import Connection, SqliteDatabase
from verihook.store.group_commit import GroupCommitter, QueuedJob, WriteJob

__all__ = ["SqliteWalWriter", "fsync_wal"]

log = logging.getLogger("verihook.store")

T = TypeVar("T")

# As SqliteDatabase.connect sets it: how long the writer thread waits for another writer.
_BUSY_TIMEOUT_MS = 10000


class SqliteWalWriter(GroupCommitter):
    """``GroupCommitter`` for SQLite, plus ``submit_inline``; every future resolves on disk."""

    def __init__(
        self, database: SqliteDatabase, max_batch: int = 512, name: str = "verihook-writer"
    ) -> None:
        self._wal_path = f"{database.path}-wal"
        # Owns the connection: the writer thread's batches and inline ones never overlap.
        self._conn_lock = threading.Lock()
        self._unsynced: list[tuple[Future[Any], Any]] = []
        self._sync_wanted = threading.Condition()
        self._writer_done = False
        # Set by the first inline job: from then on the connection never waits for another
        # process's write lock, except on the writer thread (see _commit).
        self._inline = False
        self._syncer = threading.Thread(target=self._sync_loop, name=f"{name}-fsync", daemon=True)
        self._syncer.start()
        super().__init__(database, max_batch=max_batch, name=name)

    def submit(self, job: WriteJob[T], *, durable: bool = True) -> Future[T]:
        """Run ``job`` on the writer thread; answered after the fsync, or at COMMIT when not
        ``durable``."""
        future: Future[T] = Future()
        if self._closed:
            future.set_exception(StoreUnavailable("the store is closed"))
            return future
        self._jobs.put((job, future, durable))
        return future

    async def run(self, job: WriteJob[T], *, durable: bool = True) -> T:
        return await asyncio.wrap_future(self.submit(job, durable=durable))

    def submit_inline(self, job: WriteJob[Any]) -> Future[Any]:
        """Run ``job`` in its own transaction now, on this thread; resolve after the fsync.

        Falls back to the writer thread while it holds the connection (never waits here).
        """
        if not self._conn_lock.acquire(blocking=False):
            return self.submit(job)
        future: Future[Any] = Future()
        held, started = True, False
        try:
            if self._closed:
                raise StoreUnavailable("the store is closed")
            first_inline, self._inline = not self._inline, True
            conn = self._connection()
            if first_inline:
                conn.execute("PRAGMA busy_timeout=0")
            # The connection's busy timeout is 0 (see _connection): if another process holds
            # the write lock, BEGIN fails at once and the writer thread waits for it instead.
            with conn.transaction():
                started = True
                value = job(conn)
            # Queued while holding the connection: close() cannot stop the fsync thread
            # between this commit and its queueing.
            self._to_sync([(future, value)])
        except StoreUnavailable as exc:
            if not started and _is_busy(exc):
                held = False
                self._conn_lock.release()
                return self.submit(job)
            self._forget_connection()
            future.set_exception(exc)
        except Exception as exc:  # the job's own failure: its transaction is rolled back
            future.set_exception(exc)
        finally:
            if held:
                self._conn_lock.release()
        return future

    def close(self, timeout: float = 10.0) -> None:
        if self._closed:
            return
        super().close(timeout)
        with self._sync_wanted:
            self._writer_done = True
            self._sync_wanted.notify()
        self._syncer.join(timeout)

    # -- the writer thread (GroupCommitter's loop) ------------------------------------------

    def _commit(self, batch: list[QueuedJob]) -> None:
        with self._conn_lock:
            if not self._inline:
                super()._commit(batch)
                return
            # The writer thread may wait for another process's write lock; inline callers
            # must not. Switched here, on the rarely used thread path, so that the hot inline
            # path runs no extra statement (each one is a GIL hand-off on one core).
            self._set_busy_timeout(_BUSY_TIMEOUT_MS)
            try:
                super()._commit(batch)
            finally:
                self._set_busy_timeout(0)

    def _set_busy_timeout(self, milliseconds: int) -> None:
        try:
            self._connection().execute(f"PRAGMA busy_timeout={milliseconds}")
        except StoreUnavailable:
            self._forget_connection()  # _commit reconnects and reports the outage

    def _resolve(self, outcomes: list[tuple[bool, Any]], batch: list[QueuedJob]) -> None:
        done = []
        for (ok, value), (_, future, durable) in zip(outcomes, batch, strict=True):
            if not ok:
                future.set_exception(value)
            elif durable:
                done.append((future, value))
            else:
                future.set_result(value)
        self._to_sync(done)

    def _connection(self) -> Connection:
        if self._conn is None:
            conn = self.database.connect()
            # Commits write the WAL without syncing it; the fsync thread makes them durable
            # before anyone is told so.
            conn.execute("PRAGMA synchronous=NORMAL")
            if self._inline:
                conn.execute("PRAGMA busy_timeout=0")
            self._conn = conn
        return self._conn

    def _close_connection(self) -> None:
        with self._conn_lock:
            super()._close_connection()

    def _forget_connection(self) -> None:
        # On the caller's thread: no pause (GroupCommitter's writer sleeps; a loop must not).
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:
                pass
            self._conn = None

    # -- the fsync thread ------------------------------------------------------------------

    def _to_sync(self, done: list[tuple[Future[Any], Any]]) -> None:
        if done:
            with self._sync_wanted:
                self._unsynced.extend(done)
                self._sync_wanted.notify()

    def _sync_loop(self) -> None:
        while True:
            with self._sync_wanted:
                while not self._unsynced and not self._writer_done:
                    self._sync_wanted.wait()
                if not self._unsynced:
                    return  # closed, and everything committed is answered
                waiting, self._unsynced = self._unsynced, []
            try:
                self._fsync_wal()
            except OSError as exc:
                failure = StoreUnavailable(f"cannot sync the SQLite WAL: {exc.strerror}")
                for future, _ in waiting:
                    future.set_exception(failure)
                continue
            for future, value in waiting:
                future.set_result(value)

    def _fsync_wal(self) -> None:
        # Everything committed before these futures were queued is in the WAL file.
        fsync_wal(self._wal_path)


def fsync_wal(wal_path: str) -> None:
    """Make every commit already written to a SQLite WAL durable.

    fsync is per file, not per descriptor, so a descriptor of our own syncs what SQLite wrote.
    """
    try:
        fd = os.open(wal_path, os.O_RDONLY)
    except FileNotFoundError:
        # SQLite removes the WAL only when its last connection closes, after checkpointing
        # it into the database file and syncing that: what was in it is on disk.
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _is_busy(exc: StoreUnavailable) -> bool:
    """Another connection holds the write lock (SQLITE_BUSY): nothing of ours went wrong."""
    cause = exc.__cause__
    return (
        isinstance(cause, sqlite3.OperationalError)
        and getattr(cause, "sqlite_errorcode", None) == sqlite3.SQLITE_BUSY
    )
