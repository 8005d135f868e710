from __future__ import annotations

import pytest

from verihook.delivery.retry import DEFAULT_DELAYS, RetrySchedule
from verihook.exceptions import InvalidInput

NOW = 1_700_000_000.0


def fixed(value: float) -> RetrySchedule:
    return RetrySchedule(random=lambda: value)


def test_default_schedule_is_the_documented_one() -> None:
    assert DEFAULT_DELAYS == (0, 5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400)
    assert sum(DEFAULT_DELAYS) / 86400 == pytest.approx(3.15, abs=0.01)  # "about 3 days"


@pytest.mark.parametrize(
    ("attempts_made", "delay"),
    [(0, 0), (1, 5), (2, 300), (3, 1800), (4, 7200), (5, 18000), (9, 86400)],
)
def test_without_jitter_each_attempt_waits_its_delay(attempts_made: int, delay: float) -> None:
    # random() = 0.5 is the midpoint: factor exactly 1.
    assert fixed(0.5).next_attempt(attempts_made, NOW) == NOW + delay


@pytest.mark.parametrize(("rand", "factor"), [(0.0, 0.8), (0.5, 1.0), (0.999999, 1.2)])
def test_jitter_stays_within_twenty_percent(rand: float, factor: float) -> None:
    assert fixed(rand).next_attempt(2, NOW) == pytest.approx(NOW + 300 * factor, abs=1e-3)


def test_spent_schedule_answers_none() -> None:
    assert fixed(0.5).next_attempt(10, NOW) is None
    assert fixed(0.5).next_attempt(11, NOW) is None
    assert RetrySchedule().max_attempts == 10


def test_negative_attempts_refused() -> None:
    with pytest.raises(ValueError):
        fixed(0.5).next_attempt(-1, NOW)


def test_scaled_compresses_time() -> None:
    s = fixed(0.5).scaled(0.001)
    assert s.next_attempt(1, NOW) == pytest.approx(NOW + 0.005)


@pytest.mark.parametrize(
    ("text", "delays"),
    [
        (None, DEFAULT_DELAYS),
        ("", DEFAULT_DELAYS),
        ("[0, 1, 2.5]", (0.0, 1.0, 2.5)),
        ("0,60,3600", (0.0, 60.0, 3600.0)),
    ],
)
def test_parse(text: str | None, delays: tuple[float, ...]) -> None:
    assert RetrySchedule.parse(text).delays == tuple(float(d) for d in delays)


@pytest.mark.parametrize("text", ["[", "[-1]", "a,b", '{"a": 1}', "[1e999]", "[]", "nan"])
def test_parse_refuses_garbage(text: str) -> None:
    with pytest.raises(InvalidInput):
        RetrySchedule.parse(text)


def test_round_trip() -> None:
    s = RetrySchedule((0, 1, 2))
    assert RetrySchedule.parse(s.to_text()) == s
