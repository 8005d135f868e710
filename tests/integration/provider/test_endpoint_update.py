"""Changing an endpoint after it is created, on SQLite and PostgreSQL alike: what persists, what
stays, and where queued deliveries go next."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fixed_clock import Clock

from verihook.delivery.health import CircuitBreaker
from verihook.delivery.worker import Worker
from verihook.exceptions import InvalidInput
from verihook.format import EventType
from verihook.provider import Provider, SyncProvider
from verihook.provider.endpoints import UNCHANGED
from verihook.store import Database

sys.path.insert(0, str(Path(__file__).parents[1] / "delivery"))
from delivery_receivers import TestReceiver

COMPLETED = EventType.VERIFICATION_COMPLETED
REVIEWED = EventType.VERIFICATION_REVIEWED


@pytest.fixture
def receiver() -> Iterator[TestReceiver]:
    r = TestReceiver().start()
    yield r
    r.stop()


def endpoint_row(database: Database, endpoint_id: str) -> tuple[Any, ...]:
    with database.connection() as conn:
        row = conn.one("SELECT * FROM verihook_endpoints WHERE id = ?", (endpoint_id,))
    assert row is not None
    return tuple(row)


def settings(database: Database, endpoint_id: str) -> tuple[Any, ...]:
    with database.connection() as conn:
        row = conn.one(
            "SELECT url, event_types, retry_schedule, max_in_flight, rate_limit, updated_at"
            " FROM verihook_endpoints WHERE id = ?",
            (endpoint_id,),
        )
    assert row is not None
    return tuple(row)


def test_every_setting_changes_and_persists_and_nothing_else_does(
    provider: SyncProvider, database: Database, clock: Clock
) -> None:
    created = provider.add_endpoint("https://hooks.example.com/v1", events="VERIFICATION_COMPLETED")
    clock.now += 60
    updated = provider.update_endpoint(
        created.id,
        url="https://hooks.example.com/v2",
        events=["VERIFICATION_REVIEWED"],
        retry_schedule=[0, 5, 300],
        max_in_flight=3,
        rate_limit=2.5,
    )

    assert updated.url == "https://hooks.example.com/v2"
    assert updated.event_types == (REVIEWED,)
    assert updated.retry_schedule == (0.0, 5.0, 300.0)
    assert (updated.max_in_flight, updated.rate_limit) == (3, 2.5)
    assert (updated.created_at, updated.updated_at) == (created.created_at, clock.now)
    # Same endpoint: id, secrets and state are untouched.
    assert (updated.id, updated.enabled, updated.disabled_reason) == (created.id, True, None)
    assert updated.encryption_secret == created.encryption_secret
    assert updated.signing_secret == created.signing_secret
    assert provider.get_endpoint(created.id) == updated
    assert settings(database, created.id) == (
        "https://hooks.example.com/v2",
        '["VERIFICATION_REVIEWED"]',
        "[0.0,5.0,300.0]",
        3,
        2.5,
        clock.now,
    )
    assert [e.id for e in provider.list_endpoints()] == [created.id]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"url": "https://other.example.com/in"}, {"url": "https://other.example.com/in"}),
        ({"events": "VERIFICATION_REVIEWED"}, {"event_types": (REVIEWED,)}),
        ({"events": ["VERIFICATION_COMPLETED", "VERIFICATION_REVIEWED"]}, {}),
        ({"retry_schedule": [1, 2]}, {"retry_schedule": (1.0, 2.0)}),
        ({"retry_schedule": None}, {"retry_schedule": None}),
        ({"max_in_flight": 1000}, {"max_in_flight": 1000}),
        ({"rate_limit": 0.5}, {"rate_limit": 0.5}),
        ({"rate_limit": None}, {"rate_limit": None}),
        ({"rate_limit": UNCHANGED, "max_in_flight": 7}, {"max_in_flight": 7}),
    ],
)
def test_one_setting_at_a_time_leaves_the_others(
    provider: SyncProvider,
    database: Database,
    clock: Clock,
    change: dict[str, Any],
    expected: dict[str, Any],
) -> None:
    created = provider.add_endpoint(
        "https://hooks.example.com/in", retry_schedule=[0, 60], max_in_flight=4, rate_limit=10
    )
    before = endpoint_row(database, created.id)
    clock.now += 1
    updated = provider.update_endpoint(created.id, **change)

    fields = ("url", "event_types", "retry_schedule", "max_in_flight", "rate_limit")
    want = {name: getattr(created, name) for name in fields} | expected
    assert {name: getattr(updated, name) for name in fields} == want
    assert updated.updated_at == clock.now
    assert provider.get_endpoint(created.id) == updated
    after = endpoint_row(database, created.id)
    assert after != before  # at least updated_at moved


def test_a_disabled_endpoint_can_be_updated_and_stays_disabled(
    provider: SyncProvider, clock: Clock
) -> None:
    created = provider.add_endpoint("https://hooks.example.com/in")
    provider.disable_endpoint(created.id, "broken receiver")
    updated = provider.update_endpoint(created.id, url="https://hooks.example.com/fixed")
    assert (updated.enabled, updated.disabled_reason) == (False, "broken receiver")
    assert provider.get_endpoint(created.id).url == "https://hooks.example.com/fixed"


def test_the_url_is_checked_by_the_address_policy(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("VERIHOOK_ALLOW_PRIVATE_NETWORKS", raising=False)
    with SyncProvider(database) as strict:
        created = strict.add_endpoint("https://hooks.example.com/in")
        before = endpoint_row(database, created.id)
        for url in ("http://hooks.example.com/in", "https://10.0.0.1/in", "https://[::1]/in"):
            with pytest.raises(InvalidInput):
                strict.update_endpoint(created.id, url=url)
        assert endpoint_row(database, created.id) == before
    with SyncProvider(database, allow_private_networks=True) as relaxed:
        assert relaxed.update_endpoint(created.id, url="http://127.0.0.1:9/in").url == (
            "http://127.0.0.1:9/in"
        )


def test_a_new_event_filter_applies_to_events_created_after_it(
    provider: SyncProvider, database: Database
) -> None:
    endpoint = provider.add_endpoint("https://hooks.example.com/in")
    first = provider.create_verification().key
    provider.complete(first, 0.5)
    provider.update_endpoint(endpoint.id, events="VERIFICATION_REVIEWED")
    second = provider.create_verification().key
    provider.complete(second, 0.5)
    provider.review(second, "approve")

    with database.connection() as conn:
        queued = sorted(
            (str(key), str(event_type))
            for key, event_type in conn.execute(
                "SELECT e.verification_key, e.event_type FROM verihook_deliveries d"
                " JOIN verihook_events e ON e.id = d.event_id WHERE d.endpoint_id = ?",
                (endpoint.id,),
            )
        )
    # The first completion was queued before the change and stays queued; the second is not.
    assert queued == sorted(
        [(str(first), "VERIFICATION_COMPLETED"), (str(second), "VERIFICATION_REVIEWED")]
    )


async def test_a_queued_delivery_goes_to_the_new_url_on_its_next_attempt(
    database_url: str, database: Database, receiver: TestReceiver
) -> None:
    provider = SyncProvider(database_url, allow_private_networks=True)
    # One attempt now, the next an hour later: the first fails, the retry waits.
    endpoint = provider.add_endpoint(receiver.url("/fail"), retry_schedule=[0, 3600])
    provider.complete(provider.create_verification().key, 0.5)
    never_trips = CircuitBreaker(threshold=1000)
    await Worker(database_url, allow_private_networks=True, breaker=never_trips).run_until_idle()
    [failed] = receiver.on("/fail")

    provider.update_endpoint(endpoint.id, url=receiver.url("/ok"))
    later = Worker(
        database_url,
        allow_private_networks=True,
        breaker=never_trips,
        clock=lambda: time.time() + 2 * 3600,  # past the retry's jitter
    )
    await later.run_until_idle()

    [delivered] = receiver.on("/ok")
    assert delivered.headers["webhook-id"] == failed.headers["webhook-id"]
    assert len(receiver.on("/fail")) == 1
    with database.connection() as conn:
        states = [tuple(r) for r in conn.execute("SELECT state, attempts FROM verihook_deliveries")]
    assert states == [("succeeded", 2)]
    provider.close()


async def test_the_async_provider_updates_too(database_url: str, clock: Clock) -> None:
    async with Provider(database_url, allow_private_networks=True, clock=clock) as provider:
        created = await provider.add_endpoint("https://hooks.example.com/in", rate_limit=3)
        clock.now += 5
        updated = await provider.update_endpoint(
            created.id, url="https://hooks.example.com/v2", rate_limit=None
        )
        assert (updated.url, updated.rate_limit, updated.updated_at) == (
            "https://hooks.example.com/v2",
            None,
            clock.now,
        )
        assert await provider.get_endpoint(created.id) == updated
