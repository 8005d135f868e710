"""SqliteWalWriter on its writer thread, durable and not (the delivery worker's use): order,
visibility, failures, close, on a real SQLite file."""

from __future__ import annotations

from concurrent.futures import wait
from pathlib import Path
from typing import Any

import pytest

from verihook.exceptions import StoreUnavailable
from verihook.store import open_database
from verihook.store.database import Connection, SqliteDatabase
from verihook.store.wal_writer import SqliteWalWriter


@pytest.fixture
def database(tmp_path: Path) -> SqliteDatabase:
    db = open_database(f"sqlite:///{tmp_path / 'writer.db'}")
    assert isinstance(db, SqliteDatabase)
    with db.connection() as conn:
        conn.execute("CREATE TABLE log (n INTEGER PRIMARY KEY, kind TEXT NOT NULL)")
    return db


def insert(n: int, kind: str) -> Any:
    def job(conn: Connection) -> int:
        conn.execute("INSERT INTO log (n, kind) VALUES (?, ?)", (n, kind))
        return n

    return job


def rows(database: SqliteDatabase) -> list[tuple[Any, ...]]:
    with database.connection() as conn:
        return conn.execute("SELECT n, kind FROM log ORDER BY n")


def test_jobs_run_in_order_and_answer_with_their_values(database: SqliteDatabase) -> None:
    writer = SqliteWalWriter(database)
    try:
        futures = [writer.submit(insert(n, "record"), durable=n % 3 != 0) for n in range(1, 301)]
        assert [f.result(10) for f in futures] == list(range(1, 301))
        # Each job saw every earlier job's writes: a claim never runs ahead of a record.
        seen = writer.submit(lambda conn: conn.scalar("SELECT MAX(n) FROM log"), durable=False)
        assert seen.result(10) == 300
    finally:
        writer.close()
    assert len(rows(database)) == 300


def test_an_eager_job_is_committed_when_answered(database: SqliteDatabase) -> None:
    writer = SqliteWalWriter(database)
    try:
        writer.submit(insert(1, "claim"), durable=False).result(10)
        # Another connection (another process, say) sees it: it is committed, not pending.
        assert rows(database) == [(1, "claim")]
        writer.submit(insert(2, "record")).result(10)
        assert rows(database) == [(1, "claim"), (2, "record")]
    finally:
        writer.close()


def test_a_failing_job_fails_alone(database: SqliteDatabase) -> None:
    writer = SqliteWalWriter(database)
    try:
        ok = writer.submit(insert(1, "record"))
        duplicate = writer.submit(insert(1, "record"))
        later = writer.submit(insert(2, "claim"), durable=False)
        wait([ok, duplicate, later], timeout=10)
        assert ok.result() == 1 and later.result() == 2
        assert duplicate.exception() is not None
        assert not isinstance(duplicate.exception(), StoreUnavailable)
    finally:
        writer.close()
    assert rows(database) == [(1, "record"), (2, "claim")]


def test_close_finishes_what_was_submitted_then_refuses(database: SqliteDatabase) -> None:
    writer = SqliteWalWriter(database)
    futures = [writer.submit(insert(n, "record")) for n in range(1, 51)]
    writer.close()
    assert all(f.done() and f.result() == n for n, f in enumerate(futures, start=1))
    assert len(rows(database)) == 50
    refused = writer.submit(insert(99, "record"))
    with pytest.raises(StoreUnavailable):
        refused.result(1)


def test_an_unwritable_store_fails_the_jobs_and_recovers(tmp_path: Path) -> None:
    missing = tmp_path / "gone" / "writer.db"  # its directory does not exist yet
    db = open_database(f"sqlite:///{missing}")
    assert isinstance(db, SqliteDatabase)
    writer = SqliteWalWriter(db)
    try:
        failed = writer.submit(lambda conn: conn.execute("SELECT 1"))
        with pytest.raises(StoreUnavailable):
            failed.result(10)
        missing.parent.mkdir()
        again = writer.submit(lambda conn: conn.execute("SELECT 1"), durable=False)
        assert again.result(10) == [(1,)]
    finally:
        writer.close()
