"""Automation thresholds: which scores decide a verification without a human review."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from verihook.exceptions import InvalidInput
from verihook.format import Status

__all__ = ["Thresholds", "check_score"]


def check_score(score: object, name: str = "score") -> float:
    """A number in [0, 1]; NaN, infinities, booleans and text are refused."""
    if isinstance(score, bool) or not isinstance(score, int | float):
        raise InvalidInput(f"{name} must be a number between 0 and 1")
    value = float(score)
    if math.isnan(value) or not 0.0 <= value <= 1.0:
        raise InvalidInput(f"{name} must be a number between 0 and 1")
    return value


@dataclass(frozen=True, slots=True)
class Thresholds:
    """``score >= approve`` approves, ``score < decline`` declines, anything else waits.

    Either bound may be None (that side is never automated); both None is "off".
    """

    approve: float | None = None
    decline: float | None = None

    def __post_init__(self) -> None:
        if self.approve is not None:
            object.__setattr__(self, "approve", check_score(self.approve, "approve threshold"))
        if self.decline is not None:
            object.__setattr__(self, "decline", check_score(self.decline, "decline threshold"))
        if self.approve is not None and self.decline is not None and self.approve < self.decline:
            # Otherwise a score could be both approved and declined.
            raise InvalidInput("approve threshold must be greater than or equal to decline")

    @classmethod
    def off(cls) -> Thresholds:
        return cls()

    @property
    def is_off(self) -> bool:
        return self.approve is None and self.decline is None

    def decide(self, score: float) -> Status:
        """The status a completed verification with this score gets at once."""
        if self.approve is not None and score >= self.approve:
            return Status.APPROVED
        if self.decline is not None and score < self.decline:
            return Status.DECLINED
        return Status.PENDING

    def to_dict(self) -> dict[str, Any]:
        return {"approve": self.approve, "decline": self.decline}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Thresholds:
        return cls(approve=data.get("approve"), decline=data.get("decline"))
