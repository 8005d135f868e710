"""SqliteWalWriter: inline and queued batches, answered only after the WAL is synced."""

from __future__ import annotations

import pytest

from verihook.exceptions import StoreUnavailable
from verihook.store import Connection, open_database
from verihook.store.database import SqliteDatabase
from verihook.store.wal_writer import SqliteWalWriter


def _setup(url: str) -> SqliteDatabase:
    database = open_database(url)
    assert isinstance(database, SqliteDatabase)
    with database.connection() as conn:
        conn.execute("CREATE TABLE t (n INTEGER PRIMARY KEY)")
    return database


def _insert(n: int):  # type: ignore[no-untyped-def]
    def job(conn: Connection) -> int:
        conn.execute("INSERT INTO t (n) VALUES (?)", (n,))
        return n

    return job


def test_inline_and_queued_jobs_are_committed_and_answered(sqlite_url: str) -> None:
    database = _setup(sqlite_url)
    writer = SqliteWalWriter(database)
    try:
        futures = [writer.submit_inline(_insert(i)) for i in range(50)]
        futures += [writer.submit(_insert(i)) for i in range(50, 100)]
        assert [f.result(timeout=10) for f in futures] == list(range(100))
        with database.connection() as conn:
            assert conn.scalar("SELECT COUNT(*) FROM t") == 100
            # The writer's commits do not sync by themselves: the fsync thread does.
        assert writer._conn is not None
        assert writer._conn.scalar("PRAGMA synchronous") == 1
    finally:
        writer.close()


def test_a_failing_inline_job_fails_alone_and_writes_nothing(sqlite_url: str) -> None:
    database = _setup(sqlite_url)
    writer = SqliteWalWriter(database)
    try:
        assert writer.submit_inline(_insert(1)).result(timeout=10) == 1

        def bad(conn: Connection) -> None:
            conn.execute("INSERT INTO t (n) VALUES (2)")
            raise ValueError("boom")

        with pytest.raises(ValueError):
            writer.submit_inline(bad).result(timeout=10)
        assert writer.submit_inline(_insert(3)).result(timeout=10) == 3
        with database.connection() as conn:
            assert [n for (n,) in conn.execute("SELECT n FROM t ORDER BY n")] == [1, 3]
    finally:
        writer.close()


def test_closed_writer_refuses_inline_jobs(sqlite_url: str) -> None:
    database = _setup(sqlite_url)
    writer = SqliteWalWriter(database)
    pending = writer.submit_inline(_insert(1))
    writer.close()
    assert pending.result(timeout=10) == 1
    with pytest.raises(StoreUnavailable):
        writer.submit_inline(_insert(2)).result(timeout=10)


def test_inline_never_waits_for_another_process_write_lock(sqlite_url: str) -> None:
    # Another connection (as another process would) holds SQLite's write lock: an inline job
    # must not block its caller (an event loop) for busy_timeout; the writer thread waits.
    database = _setup(sqlite_url)
    writer = SqliteWalWriter(database)
    other = database.connect()
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("INSERT INTO t (n) VALUES (?)", (1000,))
        future = writer.submit_inline(_insert(1))
        # Had it waited on the lock, it would have given up with an error by now.
        assert not future.done()
        other.execute("COMMIT")
        assert future.result(timeout=10) == 1
        with database.connection() as conn:
            assert conn.execute("SELECT n FROM t ORDER BY n") == [(1,), (1000,)]
        # The inline path works again once the lock is free.
        assert writer.submit_inline(_insert(2)).result(timeout=10) == 2
    finally:
        other.close()
        writer.close()
