"""When to try a delivery again: the retry schedule as a pure value object.

``next_attempt(attempts_made, now)`` answers the time of the next try, or None when the
schedule is spent. Jitter spreads retries so endpoints that come back are not stampeded.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import orjson

from verihook.exceptions import InvalidInput

__all__ = ["DEFAULT_DELAYS", "RetrySchedule"]

# immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h: about 3 days in all.
DEFAULT_DELAYS: tuple[float, ...] = (0, 5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400)
_MAX_ATTEMPTS = 100


@dataclass(frozen=True, slots=True)
class RetrySchedule:
    """``delays[n]`` is the wait before attempt ``n + 1``; attempt 1 is due on creation.

    ``random`` returns a float in [0, 1): inject a fixed one to make jitter deterministic.
    """

    delays: tuple[float, ...] = DEFAULT_DELAYS
    jitter: float = 0.2
    random: Callable[[], float] = field(default=random.random, compare=False, repr=False)

    def __post_init__(self) -> None:
        delays = tuple(float(d) for d in self.delays)
        if not delays or len(delays) > _MAX_ATTEMPTS:
            raise InvalidInput(f"retry schedule must hold 1 to {_MAX_ATTEMPTS} delays")
        if any(math.isnan(d) or math.isinf(d) or d < 0 for d in delays):
            raise InvalidInput("retry delays must be finite, non-negative seconds")
        if not 0.0 <= self.jitter < 1.0:
            raise InvalidInput("retry jitter must be in [0, 1)")
        object.__setattr__(self, "delays", delays)

    @property
    def max_attempts(self) -> int:
        return len(self.delays)

    def next_attempt(self, attempts_made: int, now: float) -> float | None:
        """When attempt ``attempts_made + 1`` is due, or None: the delivery has failed."""
        if attempts_made < 0:
            raise ValueError("attempts_made must be >= 0")
        if attempts_made >= len(self.delays):
            return None
        delay = self.delays[attempts_made]
        return now + delay * (1.0 + self.jitter * (2.0 * self.random() - 1.0))

    def scaled(self, factor: float) -> RetrySchedule:
        """The same shape, time-compressed (tests, drills)."""
        return RetrySchedule(tuple(d * factor for d in self.delays), self.jitter, self.random)

    def to_text(self) -> str:
        return orjson.dumps(list(self.delays)).decode()

    @classmethod
    def parse(cls, text: str | None, default: RetrySchedule | None = None) -> RetrySchedule:
        """An endpoint's ``retry_schedule`` column: a JSON list or comma-separated seconds."""
        base = default if default is not None else cls()
        if text is None or not text.strip():
            return base
        try:
            raw: object = orjson.loads(text) if text.lstrip().startswith("[") else text.split(",")
            if not isinstance(raw, list):
                raise ValueError
            delays: Sequence[float] = [float(d) for d in raw]
        except (ValueError, TypeError, orjson.JSONDecodeError):
            raise InvalidInput("retry schedule must be a list of seconds") from None
        return cls(tuple(delays), base.jitter, base.random)
