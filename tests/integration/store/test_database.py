"""The storage foundation, on both real backends."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from verihook.exceptions import InvalidInput, StoreUnavailable
from verihook.store import (
    Connection,
    Database,
    GroupCommitter,
    IntegrityError,
    Migration,
    applied_versions,
    migrate,
    open_database,
)

NOTES = Migration(
    domain="test",
    version=1,
    name="notes",
    sqlite="CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL UNIQUE)",
    postgres="CREATE TABLE notes (id BIGSERIAL PRIMARY KEY, body TEXT NOT NULL UNIQUE)",
)
NOTES_TAGS = Migration(
    domain="test",
    version=2,
    name="tags",
    sqlite="ALTER TABLE notes ADD COLUMN tag TEXT; CREATE INDEX notes_tag ON notes (tag)",
    postgres="ALTER TABLE notes ADD COLUMN tag TEXT; CREATE INDEX notes_tag ON notes (tag)",
)


def test_migrate_applies_each_step_once(database: Database) -> None:
    assert [m.version for m in migrate(database, [NOTES_TAGS, NOTES])] == [1, 2]
    assert migrate(database, [NOTES, NOTES_TAGS]) == []
    assert applied_versions(database) == {"test": 2}
    with database.connection() as conn:
        with conn.transaction():
            conn.execute("INSERT INTO notes (body, tag) VALUES (?, ?)", ("a", "x"))
        assert conn.execute("SELECT body, tag FROM notes") == [("a", "x")]


def errors_of_threads(target: Callable[[], object], count: int) -> list[BaseException]:
    """Run ``target`` on ``count`` threads at once; what they raised."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            target()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def test_concurrent_migrations_do_not_collide(database: Database) -> None:
    assert errors_of_threads(lambda: migrate(database, [NOTES, NOTES_TAGS]), 4) == []
    assert applied_versions(database) == {"test": 2}


def test_many_connections_opening_a_new_sqlite_file_together_all_succeed(
    tmp_path: Path,
) -> None:
    # The first connection switches the file to WAL, which needs an exclusive lock that
    # SQLite refuses at once rather than waiting; without a retry about 1 round in 150
    # failed with "database is locked".
    for round_ in range(200):
        database = open_database(f"sqlite:///{tmp_path}/race{round_}.db")
        errors = errors_of_threads(lambda db=database: db.connect().close(), 8)
        assert errors == [], f"round {round_}"


def test_transaction_rolls_back_on_error(database: Database) -> None:
    migrate(database, [NOTES])
    with database.connection() as conn:
        with pytest.raises(RuntimeError), conn.transaction():
            conn.execute("INSERT INTO notes (body) VALUES (?)", ("lost",))
            raise RuntimeError("boom")
        assert conn.execute("SELECT body FROM notes") == []


def test_unique_violation_is_integrity_error(database: Database) -> None:
    migrate(database, [NOTES])
    with database.connection() as conn:
        with conn.transaction():
            conn.execute("INSERT INTO notes (body) VALUES (?)", ("same",))
        with pytest.raises(IntegrityError), conn.transaction():
            conn.execute("INSERT INTO notes (body) VALUES (?)", ("same",))


def test_group_commit_isolates_a_failing_job(database: Database) -> None:
    migrate(database, [NOTES])
    writer = GroupCommitter(database)
    try:

        def insert(body: str):  # type: ignore[no-untyped-def]
            return lambda conn: conn.rowcount("INSERT INTO notes (body) VALUES (?)", (body,))

        futures = [writer.submit(insert(f"n{i}")) for i in range(200)]
        futures.append(writer.submit(insert("n7")))  # duplicate: fails alone
        futures.append(writer.submit(insert("last")))
        results = []
        for f in futures:
            try:
                results.append(f.result(10))
            except IntegrityError:
                results.append("dup")
        assert results == [1] * 200 + ["dup", 1]
        with database.connection() as conn:
            assert conn.scalar("SELECT COUNT(*) FROM notes") == 201
    finally:
        writer.close()


def test_group_commit_rolls_back_a_lone_failing_job_and_goes_on(database: Database) -> None:
    # A batch of one runs without a savepoint: its own transaction must still roll back
    # everything the job wrote before it failed, and the next job must start clean.
    migrate(database, [NOTES])
    seen: list[str] = []
    writer = GroupCommitter(database, setup=lambda conn: seen.append(conn.dialect))
    try:

        def half_then_fail(conn: Connection) -> None:
            conn.execute("INSERT INTO notes (body) VALUES (?)", ("half",))
            raise ValueError("the job's own failure")

        with pytest.raises(ValueError, match="own failure"):
            writer.call(half_then_fail, timeout=10)
        assert writer.call(lambda c: c.rowcount("INSERT INTO notes (body) VALUES ('ok')")) == 1
        with database.connection() as conn:
            assert conn.execute("SELECT body FROM notes") == [("ok",)]
        assert seen == [database.dialect]  # setup ran once, on the one connection
    finally:
        writer.close()


async def test_group_commit_from_asyncio(database: Database) -> None:
    migrate(database, [NOTES])
    writer = GroupCommitter(database)
    try:
        count = await writer.run(
            lambda conn: conn.rowcount("INSERT INTO notes (body) VALUES (?)", ("async",))
        )
        assert count == 1
    finally:
        writer.close()


def test_unknown_url_scheme_is_refused() -> None:
    with pytest.raises(InvalidInput, match="sqlite:/// or postgresql://"):
        open_database("mysql://localhost/db")
    with pytest.raises(InvalidInput, match="in-memory"):
        open_database("sqlite:///:memory:")


def test_sqlite_missing_directory_is_store_unavailable(tmp_path: Path) -> None:
    db = open_database(f"sqlite:///{tmp_path / 'no' / 'such' / 'dir.db'}")
    with pytest.raises(StoreUnavailable, match="cannot open SQLite"):
        db.connect()


def test_postgres_down_is_store_unavailable() -> None:
    # Port 1 on loopback: nothing listens, the connection is refused at once.
    db = open_database("postgresql://postgres:hunter2@127.0.0.1:1/test")
    with pytest.raises(StoreUnavailable) as info:
        db.connect()
    assert "hunter2" not in str(info.value)


def test_domains_apply_in_the_order_given(database: Database) -> None:
    # "zeta" sorts after "alpha" by name, but alpha's index needs zeta's table.
    base = Migration("zeta", 1, "base", NOTES.sqlite, NOTES.postgres)
    dependent = Migration(
        "alpha",
        1,
        "index",
        "CREATE INDEX notes_body ON notes (body)",
        "CREATE INDEX notes_body ON notes (body)",
    )
    assert [m.domain for m in migrate(database, [base, dependent])] == ["zeta", "alpha"]
    assert applied_versions(database) == {"zeta": 1, "alpha": 1}
