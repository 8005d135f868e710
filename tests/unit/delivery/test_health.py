from __future__ import annotations

import pytest

from verihook.delivery.health import CircuitBreaker, EndpointHealth, HealthChange, RateLimiter

NOW = 1_700_000_000.0
BREAKER = CircuitBreaker(threshold=3, base_open=10.0, max_open=35.0, disable_after=100.0)


def run(results: list[bool], start: EndpointHealth | None = None) -> list[HealthChange]:
    health = start or EndpointHealth()
    changes = []
    for i, ok in enumerate(results):
        change = BREAKER.after(health, ok, NOW + i)
        changes.append(change)
        health = change.health
    return changes


def test_failures_below_threshold_keep_the_circuit_closed() -> None:
    changes = run([False, False])
    assert changes[-1] == HealthChange(EndpointHealth(2, NOW, None))
    assert not BREAKER.is_open(changes[-1].health, NOW + 1)
    assert not BREAKER.probing(changes[-1].health)


def test_threshold_opens_with_doubling_capped_duration() -> None:
    changes = run([False] * 6)
    opens = [c.health.circuit_open_until for c in changes]
    # Failure i happens at NOW + i.
    assert opens == [None, None, NOW + 2 + 10, NOW + 3 + 20, NOW + 4 + 35, NOW + 5 + 35]
    health = changes[2].health
    assert BREAKER.is_open(health, NOW + 5)
    assert not BREAKER.is_open(health, NOW + 12)
    assert BREAKER.probing(health)


def test_success_resets_everything() -> None:
    changes = run([False, False, False, True])
    assert changes[-1] == HealthChange(EndpointHealth())
    assert changes[-1].health.healthy


def test_disable_after_only_failures_for_long_enough() -> None:
    start = EndpointHealth(50, NOW - 99.5, None)
    assert BREAKER.after(start, False, NOW).disable_reason is None
    change = BREAKER.after(start, False, NOW + 1)
    assert change.disable_reason is not None and "failures" in change.disable_reason
    # One success in between starts the count again.
    assert BREAKER.after(EndpointHealth(), False, NOW + 1000).disable_reason is None


def test_default_disables_after_five_days() -> None:
    breaker = CircuitBreaker()
    start = EndpointHealth(1, NOW, None)
    assert breaker.after(start, False, NOW + 5 * 86400 - 1).disable_reason is None
    assert breaker.after(start, False, NOW + 5 * 86400).disable_reason == (
        "nothing but failures for 5 days"
    )


def test_rate_limiter_bursts_then_spaces() -> None:
    limiter = RateLimiter(rate=2.0)  # burst 2
    assert [limiter.take(NOW) for _ in range(2)] == [0.0, 0.0]
    assert limiter.take(NOW) == pytest.approx(0.5)
    assert limiter.take(NOW + 0.25) == pytest.approx(0.25)
    assert limiter.take(NOW + 0.5) == 0.0
    assert limiter.take(NOW + 0.5) == pytest.approx(0.5)


def test_rate_limiter_refills_up_to_burst_only() -> None:
    limiter = RateLimiter(rate=1.0, burst=3.0)
    assert limiter.take(NOW) == 0.0
    assert [limiter.take(NOW + 1000) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take(NOW + 1000) > 0


@pytest.mark.parametrize("rate", [0.0, -1.0, float("inf"), float("nan")])
def test_rate_limiter_refuses_bad_rates(rate: float) -> None:
    with pytest.raises(ValueError):
        RateLimiter(rate=rate)
