"""Fixtures both provider test files use: a hand-set clock and a migrated SyncProvider."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fixed_clock import Clock

from verihook.provider import SyncProvider
from verihook.store import Database


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def provider(database: Database, clock: Clock) -> Iterator[SyncProvider]:
    p = SyncProvider(database, allow_private_networks=True, clock=clock)
    p.migrate()
    yield p
    p.close()
