"""HandlerRetry: exponential backoff, capped, then give up."""

from __future__ import annotations

import pytest

from verihook.receiver import HandlerRetry


def test_default_schedule() -> None:
    retry = HandlerRetry()
    assert [retry.delay(n) for n in range(1, 10)] == [
        1.0,
        2.0,
        4.0,
        8.0,
        16.0,
        32.0,
        64.0,
        None,
        None,
    ]


def test_capped_and_custom() -> None:
    retry = HandlerRetry(max_attempts=5, base_delay=10, factor=3, max_delay=50)
    assert [retry.delay(n) for n in range(1, 6)] == [10.0, 30.0, 50.0, 50.0, None]


def test_one_attempt_never_retries() -> None:
    assert HandlerRetry(max_attempts=1).delay(1) is None


@pytest.mark.parametrize(
    "kwargs", [{"max_attempts": 0}, {"base_delay": -1}, {"factor": 0.5}, {"max_delay": -1}]
)
def test_nonsense_is_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        HandlerRetry(**kwargs)  # type: ignore[arg-type]
