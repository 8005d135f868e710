"""The worker in-process against real receivers, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Callable

import pytest
from delivery_receivers import TestReceiver

from verihook.delivery.health import CircuitBreaker
from verihook.delivery.retry import RetrySchedule
from verihook.delivery.worker import Worker
from verihook.format import DecodeOptions, decode_request
from verihook.provider import SyncProvider
from verihook.store import Database

FAST = RetrySchedule((0, 0.05, 0.05, 0.05), jitter=0.0)  # 4 attempts, time-compressed
NEVER_TRIPS = CircuitBreaker(threshold=1000)


def rows(database: Database, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    with database.connection() as conn:
        return conn.execute(sql, params)


def by_endpoint(database: Database) -> dict[str, list[tuple[str, int]]]:
    result: dict[str, list[tuple[str, int]]] = {}
    for endpoint_id, state, attempts in rows(
        database,
        "SELECT endpoint_id, state, attempts FROM verihook_deliveries ORDER BY created_at, id",
    ):
        result.setdefault(str(endpoint_id), []).append((str(state), int(attempts)))  # type: ignore[call-overload]
    return result


async def run_until(worker: Worker, done: Callable[[], bool], timeout: float = 30.0) -> None:
    task = asyncio.create_task(worker.run(handle_signals=False))
    try:
        deadline = time.monotonic() + timeout
        while not done():
            if task.done():
                await task
            assert time.monotonic() < deadline, "worker did not get there in time"
            await asyncio.sleep(0.02)
    finally:
        worker.stop()
        await asyncio.wait_for(task, 30)


def nothing_pending(database: Database) -> Callable[[], bool]:
    def check() -> bool:
        return not rows(
            database,
            "SELECT 1 FROM verihook_deliveries d JOIN verihook_endpoints e"
            " ON e.id = d.endpoint_id WHERE d.state = 'pending' AND e.enabled = ?",
            (True,),
        )

    return check


async def test_every_event_arrives_encrypted_and_signed(
    database_url: str, database: Database, receiver: TestReceiver
) -> None:
    provider = SyncProvider(database_url, allow_private_networks=True)
    endpoint = provider.add_endpoint(receiver.url("/ok"))
    keys = [provider.create_verification().key for _ in range(20)]
    for key in keys:
        provider.complete(key, 0.5)
    worker = Worker(database_url, allow_private_networks=True, concurrency=8)
    await worker.run_until_idle()
    got = receiver.on("/ok")
    assert len(got) == 20
    options = DecodeOptions(
        secret=endpoint.encryption_secret, signing_secrets=(endpoint.signing_secret,)
    )
    decoded = [decode_request(r.headers, r.body, options, time.time()) for r in got]
    assert sorted(e.key for e in decoded) == sorted(keys)  # type: ignore[misc]
    assert by_endpoint(database) == {endpoint.id: [("succeeded", 1)] * 20}
    attempts = rows(
        database, "SELECT number, status_code, outcome, response_body FROM verihook_attempts"
    )
    assert set(attempts) == {(1, 200, "success", "ok")}
    provider.close()


async def test_refuses_private_addresses_unless_allowed(
    database_url: str, database: Database, receiver: TestReceiver
) -> None:
    provider = SyncProvider(database_url, allow_private_networks=True)
    provider.add_endpoint(receiver.url("/ok"))
    provider.complete(provider.create_verification().key, 0.5)
    worker = Worker(database_url, allow_private_networks=False, schedule=FAST)
    await worker.run_until_idle()
    assert receiver.requests == []
    assert rows(database, "SELECT outcome FROM verihook_attempts") == [("blocked",)]
    provider.close()


@pytest.mark.slow
async def test_chaos_every_event_ends_as_specified(
    database_url: str, database: Database, receiver: TestReceiver
) -> None:
    receiver.slow_seconds = 2.0
    provider = SyncProvider(database_url, allow_private_networks=True)
    paths = ["/ok", "/fail", "/slow", "/reset", "/gone", "/redirect", "/flaky", "/throttle"]
    ids = {
        path: provider.add_endpoint(receiver.url(path), max_in_flight=2 if path != "/ok" else 16).id
        for path in paths
    }
    for _ in range(5):
        provider.complete(provider.create_verification().key, 0.5)
    worker = Worker(
        database_url,
        allow_private_networks=True,
        concurrency=16,
        schedule=FAST,
        breaker=NEVER_TRIPS,
        timeout=0.3,
        poll_interval=0.05,
    )
    await run_until(worker, nothing_pending(database), timeout=60)
    result = by_endpoint(database)
    assert result[ids["/ok"]] == [("succeeded", 1)] * 5
    assert result[ids["/flaky"]] == [("succeeded", 3)] * 5
    for path in ("/fail", "/slow", "/reset", "/redirect", "/throttle"):
        assert result[ids[path]] == [("failed", 4)] * 5, path
    # 410: the endpoint is disabled; what was not tried yet waits, unspent.
    gone = result[ids["/gone"]]
    assert ("failed", 1) in gone and set(gone) <= {("failed", 1), ("pending", 0)}
    [(enabled, reason)] = rows(
        database,
        "SELECT enabled, disabled_reason FROM verihook_endpoints WHERE id = ?",
        (ids["/gone"],),
    )
    assert not enabled and reason == "endpoint answered 410 Gone"
    outcomes = dict(
        rows(
            database,
            "SELECT e.url, MIN(a.outcome) FROM verihook_attempts a JOIN verihook_deliveries d"
            " ON d.id = a.delivery_id JOIN verihook_endpoints e ON e.id = d.endpoint_id"
            " GROUP BY e.url HAVING MIN(a.outcome) = MAX(a.outcome)",
        )
    )
    assert outcomes[receiver.url("/slow")] == "timeout"
    assert outcomes[receiver.url("/reset")] == "connection_error"
    assert outcomes[receiver.url("/redirect")] == "redirect"
    assert outcomes[receiver.url("/throttle")] == "throttled"
    assert len(receiver.on("/ok")) == 5  # redirects were never followed
    # Retry-After: 1 was honoured over the 0.05 s schedule.
    for msg_id in set(receiver.ids("/throttle")):
        times = sorted(r.at for r in receiver.on("/throttle") if r.headers["webhook-id"] == msg_id)
        assert all(b - a >= 0.9 for a, b in itertools.pairwise(times))
    # The healthy endpoint finished before the slow one had its second attempt.
    ok_done = rows(
        database,
        "SELECT MAX(completed_at) FROM verihook_deliveries WHERE endpoint_id = ?",
        (ids["/ok"],),
    )[0][0]
    slow_first = rows(
        database,
        "SELECT MIN(started_at) FROM verihook_attempts a JOIN verihook_deliveries d"
        " ON d.id = a.delivery_id WHERE d.endpoint_id = ? AND a.number = 2",
        (ids["/slow"],),
    )[0][0]
    assert ok_done < slow_first  # type: ignore[operator]
    provider.close()


async def test_circuit_breaker_defers_without_spending_attempts(
    database_url: str, database: Database, receiver: TestReceiver
) -> None:
    provider = SyncProvider(database_url, allow_private_networks=True)
    bad = provider.add_endpoint(receiver.url("/fail"), max_in_flight=1).id
    for _ in range(6):
        provider.complete(provider.create_verification().key, 0.5)
    breaker = CircuitBreaker(threshold=2, base_open=3600, max_open=3600)
    worker = Worker(
        database_url, allow_private_networks=True, schedule=FAST, breaker=breaker,
        poll_interval=0.05,
    )  # fmt: skip
    await run_until(
        worker,
        lambda: (
            rows(database, "SELECT circuit_open_until FROM verihook_endpoints")[0][0] is not None
        ),
    )
    assert len(receiver.on("/fail")) == 2
    [(failures, open_until)] = rows(
        database,
        "SELECT consecutive_failures, circuit_open_until FROM verihook_endpoints WHERE id = ?",
        (bad,),
    )
    assert failures == 2 and open_until > time.time() + 3000  # type: ignore[operator]
    total = rows(database, "SELECT SUM(attempts) FROM verihook_deliveries")[0][0]
    assert total == 2
    # The circuit is open: another run claims nothing.
    await Worker(database_url, allow_private_networks=True, breaker=breaker).run_until_idle()
    assert len(receiver.on("/fail")) == 2
    provider.close()


async def test_auto_disable_after_only_failures(
    database_url: str, database: Database, receiver: TestReceiver
) -> None:
    provider = SyncProvider(database_url, allow_private_networks=True)
    provider.add_endpoint(receiver.url("/fail"), max_in_flight=1)
    provider.complete(provider.create_verification().key, 0.5)
    breaker = CircuitBreaker(threshold=1000, disable_after=0.3)
    many = RetrySchedule((0,) + (0.05,) * 99, jitter=0.0)
    worker = Worker(
        database_url, allow_private_networks=True, schedule=many, breaker=breaker,
        poll_interval=0.05,
    )  # fmt: skip
    await run_until(
        worker, lambda: not rows(database, "SELECT enabled FROM verihook_endpoints")[0][0]
    )
    [(reason,)] = rows(database, "SELECT disabled_reason FROM verihook_endpoints")
    assert str(reason).startswith("nothing but failures for")
    assert len(receiver.on("/fail")) >= 2
    provider.close()


async def test_sigterm_style_stop_releases_in_flight_unspent(
    database_url: str, database: Database, receiver: TestReceiver
) -> None:
    receiver.slow_seconds = 10
    provider = SyncProvider(database_url, allow_private_networks=True)
    provider.add_endpoint(receiver.url("/slow"), max_in_flight=4)
    for _ in range(4):
        provider.complete(provider.create_verification().key, 0.5)
    worker = Worker(database_url, allow_private_networks=True, grace=0.2, poll_interval=0.05)
    await run_until(worker, lambda: len(receiver.on("/slow")) == 4)
    assert (
        rows(database, "SELECT state, attempts, lease_owner FROM verihook_deliveries")
        == [("pending", 0, None)] * 4
    )
    assert rows(database, "SELECT COUNT(*) FROM verihook_attempts") == [(0,)]
    provider.close()


async def test_stop_lets_quick_attempts_finish_and_counts_them_once(
    database_url: str, database: Database, receiver: TestReceiver
) -> None:
    provider = SyncProvider(database_url, allow_private_networks=True)
    provider.add_endpoint(receiver.url("/ok"))
    for _ in range(30):
        provider.complete(provider.create_verification().key, 0.5)
    worker = Worker(database_url, allow_private_networks=True, concurrency=4, grace=5)
    await run_until(worker, lambda: len(receiver.on("/ok")) >= 10)
    # Whatever was sent is recorded once; whatever was not is still pending, unspent.
    sent = set(receiver.ids("/ok"))
    for event_id, state, attempts in rows(
        database, "SELECT event_id, state, attempts FROM verihook_deliveries"
    ):
        if event_id in sent:
            assert (state, attempts) == ("succeeded", 1)
        else:
            assert (state, attempts) == ("pending", 0)
    provider.close()


async def test_expired_lease_is_claimed_again(
    database_url: str, database: Database, receiver: TestReceiver
) -> None:
    provider = SyncProvider(database_url, allow_private_networks=True)
    provider.add_endpoint(receiver.url("/ok"))
    provider.complete(provider.create_verification().key, 0.5)
    # A worker that "died" holding the lease: claimed in the past, lease already expired.
    past = time.time() - 100
    with database.connection() as conn, conn.transaction():
        conn.execute(
            "UPDATE verihook_deliveries SET attempts = 1, lease_owner = 'dead',"
            " lease_expires_at = ?, next_attempt_at = ?",
            (past, past),
        )
    await Worker(database_url, allow_private_networks=True).run_until_idle()
    assert rows(database, "SELECT state, attempts, lease_owner FROM verihook_deliveries") == [
        ("succeeded", 2, None)
    ]
    assert [r.headers["webhook-attempt"] for r in receiver.on("/ok")] == ["2"]
    provider.close()


@pytest.mark.postgres
@pytest.mark.parametrize("workers", [2, 4])
async def test_several_workers_on_postgres_deliver_each_event_once(
    postgres_url: str, receiver: TestReceiver, workers: int
) -> None:
    provider = SyncProvider(postgres_url, allow_private_networks=True)
    for path in ("/ok", "/ok2"):
        provider.add_endpoint(receiver.url(path), max_in_flight=8)
    for _ in range(100):
        provider.complete(provider.create_verification().key, 0.5)
    group = [
        Worker(postgres_url, allow_private_networks=True, concurrency=8) for _ in range(workers)
    ]
    await asyncio.gather(*(w.run_until_idle() for w in group))
    for path in ("/ok", "/ok2"):
        ids = receiver.ids(path)
        assert len(ids) == 100 and len(set(ids)) == 100, path
    assert sum(w.delivered for w in group) == 200
    provider.close()


def test_stop_from_the_main_thread_wakes_a_worker_running_in_another(
    database_url: str, database: Database
) -> None:
    # An application may run the worker on a thread of its own and stop it from the main
    # thread. The worker sleeps between polls (30 s here): stop() must wake it through its
    # loop, not set its asyncio.Event from a foreign thread, which the loop never notices.
    worker = Worker(database_url, poll_interval=30.0, listen=False)
    failures: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(worker.run(handle_signals=False))
        except BaseException as exc:  # reported below, on the test's thread
            failures.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while worker._loop is None or worker._committer is None:
        assert time.monotonic() < deadline, "worker did not start"
        time.sleep(0.01)
    time.sleep(0.3)  # past its first (empty) claim: asleep until the next poll
    worker.stop()
    thread.join(5)
    assert not thread.is_alive(), "stop() did not wake the worker's loop"
    assert failures == []


async def test_a_response_body_with_nul_bytes_is_recorded(
    database_url: str, database: Database, receiver: TestReceiver
) -> None:
    # PostgreSQL's text columns refuse NUL: had the body gone in as it came, recording would
    # fail on every retry and the delivery would be sent again each time its lease expired.
    with SyncProvider(database_url, allow_private_networks=True) as provider:
        provider.add_endpoint(receiver.url("/nul"))
        provider.complete(provider.create_verification().key, 0.5)
    worker = Worker(database_url, allow_private_networks=True, schedule=FAST)
    await run_until(worker, nothing_pending(database), timeout=15)
    ((body, status, outcome),) = rows(
        database, "SELECT response_body, status_code, outcome FROM verihook_attempts"
    )
    assert (status, outcome) == (200, "success")
    assert body == "ok\ufffd\ufffd thanks\ufffd"
    assert len(receiver.on("/nul")) == 1


async def test_a_record_the_store_refuses_does_not_hold_the_others(
    database_url: str, database: Database, receiver: TestReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    # An operator deletes a delivery while its attempt is in flight: the attempt's record now
    # breaks a foreign key, on every try. The records written with it must not wait for ever.
    receiver.slow_seconds = 0.5
    with SyncProvider(database_url, allow_private_networks=True) as provider:
        provider.add_endpoint(receiver.url("/slow"))
        for _ in range(2):
            provider.complete(provider.create_verification().key, 0.5)
    worker = Worker(database_url, allow_private_networks=True, schedule=FAST)
    task = asyncio.create_task(worker.run(handle_signals=False))
    try:
        deadline = time.monotonic() + 10
        while len(receiver.on("/slow")) < 2:  # both attempts in flight
            assert time.monotonic() < deadline, "attempts did not start"
            await asyncio.sleep(0.01)
        (gone,), (kept,) = rows(database, "SELECT id FROM verihook_deliveries ORDER BY id")
        with database.connection() as conn, conn.transaction():
            conn.execute("DELETE FROM verihook_deliveries WHERE id = ?", (gone,))
        while (
            rows(database, "SELECT 1 FROM verihook_attempts WHERE delivery_id = ?", (kept,)) == []
        ):
            assert time.monotonic() < deadline, "the other record was never written"
            await asyncio.sleep(0.02)
    finally:
        worker.stop()
        await asyncio.wait_for(task, 30)
    assert rows(database, "SELECT state FROM verihook_deliveries WHERE id = ?", (kept,)) == [
        ("succeeded",)
    ]
    refused = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert any(f"delivery {gone}" in m and "IntegrityError" in m for m in refused), refused
