"""``verihook.Provider``: verifications, thresholds and endpoints, with the outbox behind them.

``SyncProvider`` does the work on the store's sync connections; ``Provider`` is its async face,
running each call in a thread (``asyncio.to_thread``) so an event loop never blocks on a commit.
Every state change and its events and deliveries commit together, or nothing is written.
"""

from __future__ import annotations

import asyncio
import functools
import os
import threading
import time
from collections.abc import Callable, Coroutine, Iterable, Iterator, Sequence
from contextlib import contextmanager
from types import TracebackType
from typing import Any, Concatenate, ParamSpec, TypeVar

from verihook.delivery.address_policy import AddressPolicy
from verihook.exceptions import InvalidInput
from verihook.format import EventType, WebhookSecret
from verihook.provider import store
from verihook.provider.connections import ConnectionPool
from verihook.provider.endpoints import (
    DEFAULT_MAX_IN_FLIGHT,
    DEFAULT_ROTATION_OVERLAP,
    UNCHANGED,
    Endpoint,
    Unchanged,
    new_endpoint,
    rotate_secrets,
    update_endpoint,
)
from verihook.provider.outbox import enqueue
from verihook.provider.store import EventRecord
from verihook.provider.thresholds import Thresholds
from verihook.provider.verifications import (
    Decision,
    Stage,
    Verification,
    check_key,
    complete,
    new_verification,
    review,
)
from verihook.store import Connection, Database, Migration, open_database
from verihook.store.registry import migrate_all

__all__ = ["ALLOW_PRIVATE_ENV", "Provider", "SyncProvider"]

ALLOW_PRIVATE_ENV = "VERIHOOK_ALLOW_PRIVATE_NETWORKS"

_P = ParamSpec("_P")
_R = TypeVar("_R")
Clock = Callable[[], float]
Events = str | Iterable[str | EventType] | None


class SyncProvider:
    """The provider, blocking. Safe to share between threads (each call takes its own
    connection). ``auto_migrate`` applies missing migrations before the first call."""

    def __init__(
        self,
        database: str | Database,
        *,
        allow_private_networks: bool = False,
        clock: Clock = time.time,
        auto_migrate: bool = True,
    ) -> None:
        self.database = open_database(database) if isinstance(database, str) else database
        allow = allow_private_networks or os.environ.get(ALLOW_PRIVATE_ENV) == "1"
        self.policy = AddressPolicy(allow_private=allow)
        self.clock = clock
        self._pool = ConnectionPool(self.database)
        self._migrated = not auto_migrate
        self._migrate_lock = threading.Lock()

    # --- lifecycle ------------------------------------------------------------------------

    def migrate(self) -> list[Migration]:
        """Apply every domain's missing migrations; returns the steps applied."""
        with self._migrate_lock:
            applied = migrate_all(self.database)
            self._migrated = True
        return applied

    def close(self) -> None:
        self._pool.close()

    def __enter__(self) -> SyncProvider:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _connection(self) -> Iterator[Connection]:
        if not self._migrated:
            with self._migrate_lock:
                if not self._migrated:
                    migrate_all(self.database)
                    self._migrated = True
        with self._pool.connection() as conn:
            yield conn

    # --- verifications --------------------------------------------------------------------

    def create_verification(self, key: str | None = None) -> Verification:
        verification = new_verification(key, self.clock())
        with self._connection() as conn, conn.transaction():
            store.insert_verification(conn, verification)
        return verification

    def complete(self, key: str, score: float) -> Verification:
        """COMPLETED (and, when a threshold decides, REVIEWED) is queued with the change."""
        canonical = check_key(key)
        with self._connection() as conn, conn.transaction():
            current = store.load_verification(conn, canonical, for_update=True)
            now = self.clock()
            transition = complete(current, score, store.load_thresholds(conn), now)
            store.update_verification(conn, transition.verification)
            enqueue(conn, transition.events, now)
        return transition.verification

    def review(self, key: str, decision: Decision | str) -> Verification:
        """``decision`` is ``approve`` or ``decline``; a reviewed verification is a Conflict."""
        canonical = check_key(key)
        chosen = Decision.parse(decision)
        with self._connection() as conn, conn.transaction():
            current = store.load_verification(conn, canonical, for_update=True)
            now = self.clock()
            transition = review(current, chosen, now)
            store.update_verification(conn, transition.verification)
            enqueue(conn, transition.events, now)
        return transition.verification

    def get_verification(self, key: str) -> Verification:
        canonical = check_key(key)
        with self._connection() as conn:
            return store.load_verification(conn, canonical)

    def list_verifications(
        self, stage: Stage | str | None = None, limit: int = 100
    ) -> list[Verification]:
        chosen = None if stage is None else _parse_stage(stage)
        with self._connection() as conn:
            return store.list_verifications(conn, chosen, _check_limit(limit))

    def verification_events(self, key: str) -> list[EventRecord]:
        """The events a verification caused, each with its deliveries counted by state."""
        canonical = check_key(key)
        with self._connection() as conn:
            store.load_verification(conn, canonical)
            return store.list_events(conn, canonical)

    def get_thresholds(self) -> Thresholds:
        with self._connection() as conn:
            return store.load_thresholds(conn)

    def set_thresholds(
        self, approve: float | None = None, decline: float | None = None
    ) -> Thresholds:
        """Both None turns automation off."""
        thresholds = Thresholds(approve=approve, decline=decline)
        with self._connection() as conn, conn.transaction():
            store.save_thresholds(conn, thresholds)
        return thresholds

    # --- endpoints ------------------------------------------------------------------------

    def add_endpoint(
        self,
        url: str,
        *,
        events: Events = None,
        secret: str | WebhookSecret | None = None,
        encryption: bool = True,
        retry_schedule: Sequence[float] | None = None,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        rate_limit: float | None = None,
    ) -> Endpoint:
        """The returned endpoint holds its secrets: show them now, they are masked later."""
        endpoint = new_endpoint(
            url,
            policy=self.policy,
            now=self.clock(),
            events=events,
            secret=secret,
            encryption=encryption,
            retry_schedule=retry_schedule,
            max_in_flight=max_in_flight,
            rate_limit=rate_limit,
        )
        with self._connection() as conn, conn.transaction():
            store.insert_endpoint(conn, endpoint)
        return endpoint

    def list_endpoints(self) -> list[Endpoint]:
        with self._connection() as conn:
            return store.list_endpoints(conn)

    def get_endpoint(self, endpoint_id: str) -> Endpoint:
        with self._connection() as conn:
            return store.load_endpoint(conn, endpoint_id)

    def enable_endpoint(self, endpoint_id: str) -> Endpoint:
        with self._connection() as conn, conn.transaction():
            store.set_endpoint_enabled(conn, endpoint_id, True, None, self.clock())
            return store.load_endpoint(conn, endpoint_id)

    def disable_endpoint(self, endpoint_id: str, reason: str = "disabled by operator") -> Endpoint:
        """New events skip a disabled endpoint; deliveries already queued are the worker's."""
        with self._connection() as conn, conn.transaction():
            store.set_endpoint_enabled(conn, endpoint_id, False, reason[:200], self.clock())
            return store.load_endpoint(conn, endpoint_id)

    def rotate_secret(
        self,
        endpoint_id: str,
        *,
        overlap: float = DEFAULT_ROTATION_OVERLAP,
        rotate_encryption: bool = False,
        encryption_secret: str | WebhookSecret | None = None,
    ) -> Endpoint:
        """A new signing secret (the old one signs too for ``overlap`` seconds); with
        ``rotate_encryption`` a new encryption secret as well. The result holds the secrets."""
        with self._connection() as conn, conn.transaction():
            current = store.load_endpoint(conn, endpoint_id, for_update=True)
            rotated = rotate_secrets(
                current,
                now=self.clock(),
                overlap=overlap,
                rotate_encryption=rotate_encryption,
                encryption_secret=encryption_secret,
            )
            store.update_endpoint_secrets(conn, rotated)
        return rotated

    def update_endpoint(
        self,
        endpoint_id: str,
        *,
        url: str | None = None,
        events: Events = None,
        retry_schedule: Sequence[float] | Unchanged | None = UNCHANGED,
        max_in_flight: int | None = None,
        rate_limit: float | Unchanged | None = UNCHANGED,
    ) -> Endpoint:
        """Change an endpoint's settings in place: its id, secrets and history stay.

        Only what is given changes; ``retry_schedule=None`` and ``rate_limit=None`` go back to
        the defaults. Each value is checked as ``add_endpoint`` checks it (the URL against the
        address policy too). Deliveries already queued keep pointing at this endpoint, so a new
        URL, schedule, cap or rate limit applies from their next attempt; a new event filter
        applies to events created after it. The result holds no secrets worth showing.
        """
        with self._connection() as conn, conn.transaction():
            current = store.load_endpoint(conn, endpoint_id, for_update=True)
            updated = update_endpoint(
                current,
                policy=self.policy,
                now=self.clock(),
                url=url,
                events=events,
                retry_schedule=retry_schedule,
                max_in_flight=max_in_flight,
                rate_limit=rate_limit,
            )
            store.update_endpoint_settings(conn, updated)
        return updated


def _in_thread(
    method: Callable[Concatenate[SyncProvider, _P], _R],
) -> Callable[Concatenate[Provider, _P], Coroutine[Any, Any, _R]]:
    """``SyncProvider.method`` as an async method of ``Provider``, run in a thread.

    One wrapper for every method: the signature, its checks and its docstring are the sync
    method's, written once (type checkers see the same parameters through ``ParamSpec``).
    """

    @functools.wraps(method)
    async def run(self: Provider, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        return await asyncio.to_thread(method, self._sync, *args, **kwargs)

    return run


class Provider:
    """The provider, async: ``await provider.complete(key, 0.9)``. ``sync()`` gives the
    blocking facade over the same connections, for scripts and the CLI."""

    def __init__(
        self,
        database: str | Database,
        *,
        allow_private_networks: bool = False,
        clock: Clock = time.time,
        auto_migrate: bool = True,
    ) -> None:
        self._sync = SyncProvider(
            database,
            allow_private_networks=allow_private_networks,
            clock=clock,
            auto_migrate=auto_migrate,
        )

    def sync(self) -> SyncProvider:
        return self._sync

    @property
    def database(self) -> Database:
        return self._sync.database

    async def __aenter__(self) -> Provider:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    close = _in_thread(SyncProvider.close)
    migrate = _in_thread(SyncProvider.migrate)
    create_verification = _in_thread(SyncProvider.create_verification)
    complete = _in_thread(SyncProvider.complete)
    review = _in_thread(SyncProvider.review)
    get_verification = _in_thread(SyncProvider.get_verification)
    list_verifications = _in_thread(SyncProvider.list_verifications)
    verification_events = _in_thread(SyncProvider.verification_events)
    get_thresholds = _in_thread(SyncProvider.get_thresholds)
    set_thresholds = _in_thread(SyncProvider.set_thresholds)
    add_endpoint = _in_thread(SyncProvider.add_endpoint)
    list_endpoints = _in_thread(SyncProvider.list_endpoints)
    get_endpoint = _in_thread(SyncProvider.get_endpoint)
    enable_endpoint = _in_thread(SyncProvider.enable_endpoint)
    disable_endpoint = _in_thread(SyncProvider.disable_endpoint)
    rotate_secret = _in_thread(SyncProvider.rotate_secret)
    update_endpoint = _in_thread(SyncProvider.update_endpoint)


def _parse_stage(stage: Stage | str) -> Stage:
    try:
        return Stage(stage)
    except ValueError:
        raise InvalidInput("stage must be created, completed or reviewed") from None


def _check_limit(limit: int) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 10_000:
        raise InvalidInput("limit must be an integer between 1 and 10000")
    return limit
