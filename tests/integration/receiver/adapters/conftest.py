"""Receivers for the adapter tests: a working store, and one that is down until brought back."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from adapter_cases import make_receiver

from verihook import Receiver


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[Receiver]:
    receiver = make_receiver(f"sqlite:///{tmp_path / 'inbox.db'}")
    yield receiver
    receiver.stop()


@pytest.fixture
def down(tmp_path: Path) -> Iterator[tuple[Receiver, Callable[[], None]]]:
    """A receiver whose SQLite directory does not exist yet; calling the second item makes it."""
    directory = tmp_path / "not-yet"
    receiver = make_receiver(f"sqlite:///{directory / 'inbox.db'}")
    yield receiver, lambda: directory.mkdir()
    receiver.stop()
