"""When a failed handler runs again: exponential backoff, then give up. A pure value object."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["HandlerRetry"]


@dataclass(frozen=True, slots=True)
class HandlerRetry:
    """``max_attempts`` tries in all; the n-th failure waits ``base_delay * factor**(n-1)``."""

    max_attempts: int = 8
    base_delay: float = 1.0
    factor: float = 2.0
    max_delay: float = 600.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.base_delay < 0 or self.max_delay < 0 or self.factor < 1:
            raise ValueError("delays must be >= 0 and factor >= 1")

    def delay(self, attempts: int) -> float | None:
        """Seconds to wait after ``attempts`` failed tries, or None once they are spent."""
        if attempts >= self.max_attempts:
            return None
        return float(min(self.base_delay * self.factor ** (attempts - 1), self.max_delay))
