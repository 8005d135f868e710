"""The delivery domain's migrations on a database that already holds deliveries."""

from __future__ import annotations

import time

from test_delivery_queue import BREAKER, LEASE, succeeded

from verihook.delivery.queue import claim, list_deliveries, record, replay_failed
from verihook.delivery.schema import DELIVERY_MIGRATIONS
from verihook.provider import SyncProvider
from verihook.store import Database, migrate, open_database
from verihook.store.provider_schema import PROVIDER_MIGRATIONS


def history(database: Database) -> list[tuple[object, ...]]:
    with database.connection() as conn:
        return conn.execute(
            "SELECT delivery_id, number, started_at, latency_ms, status_code, error,"
            " response_body, outcome FROM verihook_attempts ORDER BY delivery_id, number"
        )


def test_the_third_step_keeps_every_attempt_and_the_readers_still_answer(
    database_url: str, database: Database
) -> None:
    # A database as the previous release left it: delivery domain at version 2.
    # (Written by hand: the provider would bring the schema up to date on opening.)
    migrate(database, [*PROVIDER_MIGRATIONS, *DELIVERY_MIGRATIONS[:2]])
    now = time.time()
    with database.connection() as conn, conn.transaction():
        conn.execute(
            "INSERT INTO verihook_endpoints (id, url, event_types, signing_secret, enabled,"
            " max_in_flight, created_at, updated_at) VALUES ('ep_1', ?, '*', ?, ?, 10, ?, ?)",
            ("http://127.0.0.1:9/hook", "whsec_" + "A" * 32, True, now, now),
        )
        for n in range(3):
            conn.execute(
                "INSERT INTO verihook_events (id, verification_key, event_type, payload,"
                " created_at) VALUES (?, 'k', 'VERIFICATION_COMPLETED', '{}', ?)",
                (f"msg_{n}", now),
            )
            conn.execute(
                "INSERT INTO verihook_deliveries (id, event_id, endpoint_id, state, attempts,"
                " next_attempt_at, created_at, updated_at)"
                " VALUES (?, ?, 'ep_1', 'pending', 0, ?, ?, ?)",
                (f"dlv_{n}", f"msg_{n}", now, now + n, now),
            )
    with database.connection() as conn, conn.transaction():
        claimed = claim(conn, owner="w", now=now, limit=10, lease_seconds=LEASE, breaker=BREAKER)
        record(conn, [succeeded(d, now) for d in claimed[:2]], now, BREAKER)
        conn.execute(
            "UPDATE verihook_deliveries SET state = 'failed', completed_at = ?,"
            " lease_owner = NULL WHERE id = ?",
            (now, claimed[2].id),
        )
    before = history(database)
    assert len(before) == 2

    assert [m.version for m in migrate(database, DELIVERY_MIGRATIONS)] == [3]
    SyncProvider(database_url).close()  # and the provider opens it as it is

    assert history(database) == before
    with database.connection() as conn:
        listed = list_deliveries(conn, now, endpoint_id="ep_1")
        assert sorted(d.state for d in listed) == ["failed", "succeeded", "succeeded"]
        with conn.transaction():
            assert len(replay_failed(conn, "ep_1", now - 1, now)) == 1
        # The attempts table takes new rows under its primary key, and ignores a duplicate.
        with conn.transaction():
            again = claim(conn, owner="w2", now=now, limit=10, lease_seconds=LEASE, breaker=BREAKER)
        done = [succeeded(d, now) for d in again]
        with conn.transaction():
            assert record(conn, done, now, BREAKER) == 1
        with conn.transaction():
            assert record(conn, done, now, BREAKER) == 0  # the lease is gone: no second write
    assert len(history(database)) == 3


def test_on_sqlite_the_attempts_table_has_no_rowid(sqlite_url: str) -> None:
    database = open_database(sqlite_url)
    migrate(database, [*PROVIDER_MIGRATIONS, *DELIVERY_MIGRATIONS])
    with database.connection() as conn:
        sql = conn.scalar("SELECT sql FROM sqlite_master WHERE name = 'verihook_attempts'")
        leftovers = conn.execute(
            "SELECT name FROM sqlite_master WHERE name IN"
            " ('verihook_attempts_rowid', 'verihook_deliveries_endpoint')"
        )
    assert "WITHOUT ROWID" in sql and leftovers == []
