"""Endpoint health as pure state machines, the clock passed in: circuit breaker, rate limit.

The breaker counts consecutive failures. Past a threshold it opens: the endpoint's
deliveries are deferred (no attempt spent) until ``circuit_open_until``, each reopening
twice as long as the last, up to a cap; then one probe goes through (half-open, enforced by
the claim's in-flight cap of 1). An endpoint that has done nothing but fail for
``disable_after`` seconds (5 days) is disabled.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["CircuitBreaker", "EndpointHealth", "HealthChange", "RateLimiter"]

FIVE_DAYS = 5 * 24 * 3600.0


@dataclass(frozen=True, slots=True)
class EndpointHealth:
    """The health columns of ``verihook_endpoints``."""

    consecutive_failures: int = 0
    failing_since: float | None = None
    circuit_open_until: float | None = None

    @property
    def healthy(self) -> bool:
        return self.consecutive_failures == 0 and self.failing_since is None


@dataclass(frozen=True, slots=True)
class HealthChange:
    health: EndpointHealth
    disable_reason: str | None = None


@dataclass(frozen=True, slots=True)
class CircuitBreaker:
    threshold: int = 5
    base_open: float = 30.0
    max_open: float = 600.0
    disable_after: float = FIVE_DAYS

    def is_open(self, health: EndpointHealth, now: float) -> bool:
        return health.circuit_open_until is not None and now < health.circuit_open_until

    def probing(self, health: EndpointHealth) -> bool:
        """Past the threshold: only one attempt at a time may test the endpoint."""
        return health.consecutive_failures >= self.threshold

    def after(self, health: EndpointHealth, succeeded: bool, now: float) -> HealthChange:
        if succeeded:
            return HealthChange(EndpointHealth())
        failures = health.consecutive_failures + 1
        since = health.failing_since if health.failing_since is not None else now
        open_until = health.circuit_open_until
        if failures >= self.threshold:
            exponent = min(failures - self.threshold, 30)
            open_until = now + min(self.base_open * 2.0**exponent, self.max_open)
        reason = None
        if now - since >= self.disable_after:
            days = self.disable_after / 86400.0
            reason = f"nothing but failures for {days:g} days"
        return HealthChange(EndpointHealth(failures, since, open_until), reason)


@dataclass(slots=True)
class RateLimiter:
    """A token bucket: ``rate`` requests per second, bursts of up to ``burst``."""

    rate: float
    burst: float = 0.0
    tokens: float = math.nan
    updated: float = math.nan

    def __post_init__(self) -> None:
        if not self.rate > 0 or math.isinf(self.rate):
            raise ValueError("rate must be a positive number of requests per second")
        if self.burst <= 0:
            self.burst = max(1.0, self.rate)

    def take(self, now: float) -> float:
        """Take a token and answer 0, or answer how many seconds until one is free."""
        if math.isnan(self.tokens):
            self.tokens, self.updated = self.burst, now
        elapsed = max(0.0, now - self.updated)
        self.tokens = min(self.burst, self.tokens + elapsed * self.rate)
        self.updated = max(self.updated, now)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate
