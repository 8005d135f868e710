"""Contract tests of the provider store and its outbox, on SQLite and PostgreSQL alike."""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fixed_clock import Clock

from verihook.exceptions import Conflict, InvalidInput, InvalidSecret, NotFound
from verihook.format import EventType, Status, WebhookEvent, parse_event
from verihook.provider import Provider, Stage, SyncProvider
from verihook.store import Database, open_database

KEY = "0b5e2a3c-9f1d-4e8a-b7c6-1d2e3f4a5b6c"
UNKNOWN_KEY = "ffffffff-ffff-4fff-bfff-ffffffffffff"
TABLES = (
    "verihook_verifications",
    "verihook_endpoints",
    "verihook_events",
    "verihook_deliveries",
    "verihook_provider_settings",
)


def rows(database: Database, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with database.connection() as conn:
        return [tuple(r) for r in conn.execute(sql, params)]


def snapshot(database: Database) -> dict[str, list[tuple[Any, ...]]]:
    return {table: sorted(map(repr, rows(database, f"SELECT * FROM {table}"))) for table in TABLES}


def deliveries(database: Database) -> list[tuple[str, str]]:
    """(endpoint id, event type) of every delivery, sorted."""
    return sorted(
        rows(
            database,
            "SELECT d.endpoint_id, e.event_type FROM verihook_deliveries d"
            " JOIN verihook_events e ON e.id = d.event_id",
        )
    )


@pytest.fixture
def endpoints(provider: SyncProvider) -> dict[str, str]:
    """Four endpoints: all events, REVIEWED only, COMPLETED only, and one disabled."""
    every = provider.add_endpoint("http://127.0.0.1:9/all")
    reviewed = provider.add_endpoint(
        "http://127.0.0.1:9/reviewed", events="VERIFICATION_REVIEWED", encryption=False
    )
    completed = provider.add_endpoint(
        "http://127.0.0.1:9/completed", events=["VERIFICATION_COMPLETED"]
    )
    disabled = provider.add_endpoint("http://127.0.0.1:9/disabled")
    provider.disable_endpoint(disabled.id)
    return {
        "all": every.id,
        "reviewed": reviewed.id,
        "completed": completed.id,
        "disabled": disabled.id,
    }


def test_completion_without_thresholds_queues_completed_for_subscribed_enabled_endpoints(
    provider: SyncProvider, database: Database, endpoints: dict[str, str], clock: Clock
) -> None:
    provider.create_verification(KEY)
    clock.now += 60
    verification = provider.complete(KEY, 0.5)

    assert verification.status is Status.PENDING
    assert verification.stage is Stage.COMPLETED
    assert provider.get_verification(KEY) == verification
    assert deliveries(database) == sorted(
        [
            (endpoints["all"], "VERIFICATION_COMPLETED"),
            (endpoints["completed"], "VERIFICATION_COMPLETED"),
        ]
    )
    [(event_id, key, event_type, payload, created_at)] = rows(
        database,
        "SELECT id, verification_key, event_type, payload, created_at FROM verihook_events",
    )
    assert re.fullmatch(r"msg_[A-Za-z0-9_-]{26,}", event_id)
    assert (key, event_type, created_at) == (KEY, "VERIFICATION_COMPLETED", clock.now)
    event = parse_event(payload)
    assert event == WebhookEvent(
        event=EventType.VERIFICATION_COMPLETED,
        key=KEY,
        status=Status.PENDING,
        created=1_700_000_000,
        updated=1_700_000_060,
        processed=1_700_000_060,
    )
    # The stored payload is the canonical wire JSON, byte for byte.
    assert payload.encode() == event.to_json()
    for row in rows(
        database,
        "SELECT id, state, attempts, next_attempt_at, lease_owner, created_at"
        " FROM verihook_deliveries",
    ):
        assert re.fullmatch(r"dlv_[A-Za-z0-9_-]{26,}", row[0])
        assert row[1:] == ("pending", 0, clock.now, None, clock.now)


@pytest.mark.parametrize(
    ("score", "status"), [(0.8, Status.APPROVED), (1.0, Status.APPROVED), (0.19, Status.DECLINED)]
)
def test_a_decisive_score_queues_completed_and_reviewed_at_once(
    provider: SyncProvider,
    database: Database,
    endpoints: dict[str, str],
    score: float,
    status: Status,
) -> None:
    provider.set_thresholds(approve=0.8, decline=0.2)
    provider.create_verification(KEY)
    verification = provider.complete(KEY, score)

    assert (verification.status, verification.stage) == (status, Stage.REVIEWED)
    payloads = sorted(
        (p for (p,) in rows(database, "SELECT payload FROM verihook_events")),
        key=lambda p: parse_event(p).order,
    )
    assert [(e.event, e.status) for e in map(parse_event, payloads)] == [
        (EventType.VERIFICATION_COMPLETED, status),
        (EventType.VERIFICATION_REVIEWED, status),
    ]
    assert deliveries(database) == sorted(
        [
            (endpoints["all"], "VERIFICATION_COMPLETED"),
            (endpoints["all"], "VERIFICATION_REVIEWED"),
            (endpoints["completed"], "VERIFICATION_COMPLETED"),
            (endpoints["reviewed"], "VERIFICATION_REVIEWED"),
        ]
    )
    with pytest.raises(Conflict):
        provider.review(KEY, "approve")


def test_a_score_between_thresholds_waits_for_a_manual_review(
    provider: SyncProvider, database: Database, endpoints: dict[str, str], clock: Clock
) -> None:
    provider.set_thresholds(approve=0.8, decline=0.2)
    provider.create_verification(KEY)
    assert provider.complete(KEY, 0.5).status is Status.PENDING
    clock.now += 3600
    reviewed = provider.review(KEY, "decline")

    assert (reviewed.status, reviewed.stage, reviewed.updated) == (
        Status.DECLINED,
        Stage.REVIEWED,
        1_700_003_600,
    )
    events = provider.verification_events(KEY)
    assert [(e["event"], e["payload"]["status"], e["deliveries"]) for e in events] == [
        ("VERIFICATION_COMPLETED", "pending", {"pending": 2}),
        ("VERIFICATION_REVIEWED", "declined", {"pending": 2}),
    ]
    assert events[1]["payload"]["processed"] == events[0]["payload"]["processed"]


def test_refused_actions_write_nothing(
    provider: SyncProvider,
    database: Database,
    endpoints: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("VERIHOOK_ALLOW_PRIVATE_NETWORKS", raising=False)
    strict = SyncProvider(database)
    provider.set_thresholds(approve=0.9, decline=0.1)
    provider.create_verification(KEY)
    reviewed_key = str(provider.create_verification().key)
    provider.complete(reviewed_key, 0.5)
    provider.review(reviewed_key, "approve")
    before = snapshot(database)

    refused: list[tuple[type[Exception], Any]] = [
        (NotFound, lambda: provider.complete(UNKNOWN_KEY, 0.5)),
        (NotFound, lambda: provider.review(UNKNOWN_KEY, "approve")),
        (Conflict, lambda: provider.review(KEY, "approve")),  # not completed yet
        (Conflict, lambda: provider.review(reviewed_key, "decline")),
        (Conflict, lambda: provider.complete(reviewed_key, 0.5)),
        (Conflict, lambda: provider.create_verification(KEY)),
        (InvalidInput, lambda: provider.complete(KEY, 1.5)),
        (InvalidInput, lambda: provider.complete(KEY, -0.01)),
        (InvalidInput, lambda: provider.complete(KEY, math.nan)),
        (InvalidInput, lambda: provider.complete(KEY, "0.5")),
        (InvalidInput, lambda: provider.complete("not-a-uuid", 0.5)),
        (InvalidInput, lambda: provider.review(reviewed_key, "maybe")),
        (InvalidInput, lambda: provider.set_thresholds(approve=0.2, decline=0.8)),
        (InvalidInput, lambda: provider.set_thresholds(approve=2.0)),
        (InvalidInput, lambda: strict.add_endpoint("https://10.0.0.1/hook")),
        (InvalidInput, lambda: strict.add_endpoint("http://example.com/hook")),
        (InvalidInput, lambda: strict.add_endpoint("https://127.0.0.1/hook")),
        (InvalidInput, lambda: provider.add_endpoint("ftp://example.com/hook")),
        (InvalidInput, lambda: provider.add_endpoint("https://x.test/", events="NOPE")),
        (InvalidInput, lambda: provider.add_endpoint("https://x.test/", events=[])),
        (InvalidSecret, lambda: provider.add_endpoint("https://x.test/", secret="short")),
        (InvalidInput, lambda: provider.add_endpoint("https://x.test/", max_in_flight=0)),
        (InvalidInput, lambda: provider.add_endpoint("https://x.test/", retry_schedule=[-1])),
        (NotFound, lambda: provider.disable_endpoint("ep_missing")),
        (NotFound, lambda: provider.rotate_secret("ep_missing")),
        (InvalidInput, lambda: provider.rotate_secret(endpoints["all"], overlap=-1)),
        (NotFound, lambda: provider.update_endpoint("ep_missing", url="https://x.test/")),
        (InvalidInput, lambda: provider.update_endpoint(endpoints["all"])),  # nothing to change
        (InvalidInput, lambda: provider.update_endpoint(endpoints["all"], url="ftp://x.test/")),
        (InvalidInput, lambda: strict.update_endpoint(endpoints["all"], url="https://10.0.0.1/")),
        (InvalidInput, lambda: strict.update_endpoint(endpoints["all"], url="http://x.test/")),
        (InvalidInput, lambda: provider.update_endpoint(endpoints["all"], events="NOPE")),
        (InvalidInput, lambda: provider.update_endpoint(endpoints["all"], events=[])),
        (InvalidInput, lambda: provider.update_endpoint(endpoints["all"], max_in_flight=0)),
        (InvalidInput, lambda: provider.update_endpoint(endpoints["all"], rate_limit=0)),
        (InvalidInput, lambda: provider.update_endpoint(endpoints["all"], retry_schedule=[])),
        # One bad value refuses the whole change, the good ones with it.
        (
            InvalidInput,
            lambda: provider.update_endpoint(
                endpoints["all"], url="https://x.test/new", max_in_flight=0
            ),
        ),
    ]
    for error, action in refused:
        with pytest.raises(error):
            action()
    assert snapshot(database) == before
    assert provider.get_verification(KEY).stage is Stage.CREATED
    strict.close()


def test_a_failure_while_queueing_rolls_back_the_state_change(
    provider: SyncProvider, database: Database, endpoints: dict[str, str]
) -> None:
    provider.create_verification(KEY)
    with database.connection() as conn:
        if conn.dialect == "sqlite":
            conn.execute(
                "CREATE TRIGGER refuse BEFORE INSERT ON verihook_deliveries"
                " BEGIN SELECT RAISE(ABORT, 'refused by test'); END"
            )
        else:
            conn.execute(
                "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS"
                " $$ BEGIN RAISE EXCEPTION 'refused by test'; END $$"
            )
            conn.execute(
                "CREATE TRIGGER refuse BEFORE INSERT ON verihook_deliveries"
                " FOR EACH ROW EXECUTE FUNCTION refuse()"
            )
    before = snapshot(database)
    with pytest.raises(Exception, match="refused by test"):
        provider.complete(KEY, 0.5)
    assert snapshot(database) == before
    assert provider.get_verification(KEY).stage is Stage.CREATED
    # The provider still works afterwards: its pooled connection is not stuck mid-transaction.
    with database.connection() as conn:
        conn.execute(
            "DROP TRIGGER refuse"
            + (" ON verihook_deliveries" if conn.dialect == "postgres" else "")
        )
    assert provider.complete(KEY, 0.5).stage is Stage.COMPLETED


def test_disabled_and_enabled_endpoints(
    provider: SyncProvider, database: Database, endpoints: dict[str, str]
) -> None:
    for endpoint_id in endpoints.values():
        provider.disable_endpoint(endpoint_id)
    provider.create_verification(KEY)
    provider.complete(KEY, 0.5)
    assert deliveries(database) == []
    assert rows(database, "SELECT COUNT(*) FROM verihook_events") == [(1,)]

    enabled = provider.enable_endpoint(endpoints["reviewed"])
    assert (enabled.enabled, enabled.disabled_reason) == (True, None)
    provider.review(KEY, "approve")
    assert deliveries(database) == [(endpoints["reviewed"], "VERIFICATION_REVIEWED")]
    disabled = provider.get_endpoint(endpoints["all"])
    assert (disabled.enabled, disabled.disabled_reason) == (False, "disabled by operator")


def test_endpoints_round_trip_with_their_secrets(provider: SyncProvider, clock: Clock) -> None:
    added = provider.add_endpoint(
        "http://127.0.0.1:9/x",
        secret="A" * 32,
        events="verification_reviewed",
        retry_schedule=[0, 1.5, 60],
        max_in_flight=4,
        rate_limit=2.5,
    )
    assert provider.get_endpoint(added.id) == added
    assert provider.list_endpoints() == [added]
    assert added.encryption_secret is not None and added.encryption_secret.reveal() == "A" * 32
    assert added.event_types == (EventType.VERIFICATION_REVIEWED,)
    assert added.retry_schedule == (0.0, 1.5, 60.0)
    assert (added.max_in_flight, added.rate_limit, added.created_at) == (4, 2.5, clock.now)
    plain = provider.add_endpoint("http://127.0.0.1:9/y", encryption=False)
    assert provider.get_endpoint(plain.id).encryption_secret is None
    assert provider.get_endpoint(plain.id).signing_secret.reveal().startswith("whsec_")


def test_rotation_keeps_the_previous_signing_secret_for_the_overlap_window(
    provider: SyncProvider, clock: Clock
) -> None:
    endpoint = provider.add_endpoint("http://127.0.0.1:9/x")
    clock.now += 10
    rotated = provider.rotate_secret(endpoint.id)
    stored = provider.get_endpoint(endpoint.id)
    assert stored == rotated
    assert stored.signing_secret != endpoint.signing_secret
    assert stored.previous_signing_secret == endpoint.signing_secret
    assert stored.previous_signing_secret_until == clock.now + 24 * 3600
    assert stored.encryption_secret == endpoint.encryption_secret
    assert stored.signing_secrets(clock.now) == [stored.signing_secret, endpoint.signing_secret]
    assert stored.signing_secrets(clock.now + 24 * 3600) == [stored.signing_secret]

    again = provider.rotate_secret(endpoint.id, overlap=0, rotate_encryption=True)
    assert again.previous_signing_secret is None
    assert again.encryption_secret not in (None, endpoint.encryption_secret)
    assert provider.get_endpoint(endpoint.id) == again
    given = provider.rotate_secret(
        endpoint.id, overlap=60, rotate_encryption=True, encryption_secret="B" * 32
    )
    assert provider.get_endpoint(endpoint.id).encryption_secret == given.encryption_secret
    assert given.previous_signing_secret == again.signing_secret


def test_concurrent_completions_of_one_verification_let_exactly_one_win(
    database: Database, provider: SyncProvider, endpoints: dict[str, str]
) -> None:
    provider.create_verification(KEY)
    outcomes: list[str] = []
    barrier = threading.Barrier(4)

    def attempt() -> None:
        # Each thread its own provider, as separate processes would be.
        with SyncProvider(database, allow_private_networks=True) as own:
            barrier.wait(timeout=10)
            try:
                own.complete(KEY, 0.5)
                outcomes.append("won")
            except Conflict:
                outcomes.append("conflict")

    threads = [threading.Thread(target=attempt) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(outcomes) == ["conflict", "conflict", "conflict", "won"]
    assert rows(database, "SELECT COUNT(*) FROM verihook_events") == [(1,)]
    assert len(deliveries(database)) == 2


def test_list_verifications_by_stage(provider: SyncProvider, clock: Clock) -> None:
    keys = []
    for _ in range(3):
        clock.now += 1
        keys.append(provider.create_verification().key)
    provider.complete(keys[1], 0.4)
    provider.complete(keys[2], 0.4)
    provider.review(keys[2], "approve")
    assert [v.key for v in provider.list_verifications()] == keys[::-1]
    assert [v.key for v in provider.list_verifications("created")] == [keys[0]]
    assert [v.key for v in provider.list_verifications(Stage.COMPLETED)] == [keys[1]]
    assert [v.key for v in provider.list_verifications("reviewed", limit=1)] == [keys[2]]
    with pytest.raises(InvalidInput):
        provider.list_verifications("done")
    assert provider.get_thresholds().is_off


def test_a_fresh_database_is_migrated_on_first_use(database_url: str) -> None:
    with SyncProvider(database_url) as provider:
        assert provider.create_verification(KEY).key == KEY
    with SyncProvider(database_url) as again:
        assert again.migrate() == []
        assert again.get_verification(KEY).key == KEY


async def test_the_async_provider(database_url: str, clock: Clock) -> None:
    async with Provider(database_url, allow_private_networks=True, clock=clock) as provider:
        endpoint = await provider.add_endpoint(
            "http://127.0.0.1:9/x", events="VERIFICATION_COMPLETED"
        )
        await provider.set_thresholds(approve=0.5)
        verification = await provider.create_verification()
        done = await provider.complete(verification.key, 0.7)
        assert (done.status, done.stage) == (Status.APPROVED, Stage.REVIEWED)
        assert (await provider.get_verification(done.key)) == done
        assert [e.id for e in await provider.list_endpoints()] == [endpoint.id]
        assert (await provider.disable_endpoint(endpoint.id)).enabled is False
        assert provider.sync().get_endpoint(endpoint.id).enabled is False
        with pytest.raises(Conflict):
            await provider.review(done.key, "decline")


@pytest.mark.postgres
def test_postgres_notifies_workers_only_when_deliveries_commit(postgres_url: str) -> None:
    import psycopg

    database = open_database(postgres_url)
    with database.connection() as conn:
        schema = conn.scalar("SELECT current_schema()")

    def ours(notes: Iterator[Any]) -> list[tuple[str, str]]:
        # Other processes on this server notify the same channel; the payload is the schema.
        return [(n.channel, n.payload) for n in notes if n.payload == schema]

    with SyncProvider(database, allow_private_networks=True) as provider:
        provider.migrate()
        provider.add_endpoint("http://127.0.0.1:9/x")
        with psycopg.connect(postgres_url, autocommit=True) as listener:
            listener.execute("LISTEN verihook_deliveries")
            provider.create_verification(KEY)
            with pytest.raises(InvalidInput):
                provider.complete(KEY, 2.0)
            assert ours(listener.notifies(timeout=0.2)) == []
            provider.complete(KEY, 0.5)
            deadline = time.monotonic() + 10
            received: list[tuple[str, str]] = []
            while not received and time.monotonic() < deadline:
                received = ours(listener.notifies(timeout=1))
            assert received == [("verihook_deliveries", schema)]
