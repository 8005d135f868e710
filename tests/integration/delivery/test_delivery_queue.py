"""The queue's claim and record SQL on both backends: the in-flight cap, lease ownership."""

from __future__ import annotations

import threading
import time

import pytest

from verihook.delivery.health import CircuitBreaker
from verihook.delivery.outcome import Outcome, decide
from verihook.delivery.queue import AttemptRecord, ClaimedDelivery, claim, record
from verihook.delivery.retry import RetrySchedule
from verihook.delivery.sender import AttemptResult
from verihook.provider import SyncProvider
from verihook.store import Database, open_database

BREAKER = CircuitBreaker()
LEASE = 60.0


def setup(database_url: str, deliveries: int, cap: int) -> str:
    provider = SyncProvider(database_url, allow_private_networks=True)
    endpoint = provider.add_endpoint("http://127.0.0.1:9/hook", max_in_flight=cap)
    for _ in range(deliveries):
        provider.complete(provider.create_verification().key, 0.5)
    provider.close()
    return endpoint.id


def take(database: Database, owner: str, limit: int, now: float) -> list[ClaimedDelivery]:
    with database.connection() as conn, conn.transaction():
        return claim(conn, owner=owner, now=now, limit=limit, lease_seconds=LEASE, breaker=BREAKER)


def succeeded(d: ClaimedDelivery, now: float) -> AttemptRecord:
    result = AttemptResult(Outcome.SUCCESS, 1.0, 200, None, "ok")
    return AttemptRecord(d, now, result, decide(Outcome.SUCCESS, d.attempt, now, RetrySchedule()))


def pending_leases(database: Database) -> list[tuple[object, ...]]:
    with database.connection() as conn:
        return conn.execute(
            "SELECT lease_owner, attempts FROM verihook_deliveries"
            " WHERE state = 'pending' AND lease_owner IS NOT NULL ORDER BY lease_owner"
        )


def test_claim_keeps_the_endpoint_cap_and_records_under_the_lease(
    database_url: str, database: Database
) -> None:
    setup(database_url, deliveries=7, cap=5)
    now = time.time()
    first = take(database, "w1", 100, now)
    assert len(first) == 5 and {d.attempt for d in first} == {1}
    assert take(database, "w2", 100, now) == []  # the cap is full
    with database.connection() as conn, conn.transaction():
        assert record(conn, [succeeded(d, now) for d in first[:2]], now, BREAKER) == 2
    second = take(database, "w2", 100, now)
    assert len(second) == 2  # exactly the room the two successes made
    assert {d.id for d in second}.isdisjoint(d.id for d in first)
    # A record from a worker that no longer holds the lease changes nothing.
    stale = ClaimedDelivery(**{**_fields(second[0]), "lease_owner": "w1"})
    with database.connection() as conn, conn.transaction():
        assert record(conn, [succeeded(stale, now)], now, BREAKER) == 0
    assert pending_leases(database) == [("w1", 1)] * 3 + [("w2", 1)] * 2
    # Once the leases run out, the rows are due again and the cap counts them free.
    later = take(database, "w3", 100, now + LEASE + 1)
    assert len(later) == 5 and {d.attempt for d in later} == {2}


def _fields(d: ClaimedDelivery) -> dict[str, object]:
    return {name: getattr(d, name) for name in ClaimedDelivery.__slots__}


@pytest.mark.postgres
def test_concurrent_claimers_never_exceed_the_cap(postgres_url: str) -> None:
    setup(postgres_url, deliveries=40, cap=6)
    database = open_database(postgres_url)
    now = time.time()
    claimed: list[int] = []
    barrier = threading.Barrier(8)

    def claimer(i: int) -> None:
        barrier.wait(10)
        claimed.append(len(take(database, f"w{i}", 6, now)))

    threads = [threading.Thread(target=claimer, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(claimed) == 8
    assert sum(claimed) == 6  # one claimer filled the cap, the others saw its leases
    assert len(pending_leases(database)) == 6
