"""A clock the provider tests set by hand."""

from __future__ import annotations


class Clock:
    def __init__(self, now: float = 1_700_000_000.25) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now
