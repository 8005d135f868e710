from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from verihook.exceptions import InvalidInput
from verihook.format import Status
from verihook.provider.thresholds import Thresholds, check_score

APPROVED, DECLINED, PENDING = Status.APPROVED, Status.DECLINED, Status.PENDING


@pytest.mark.parametrize(
    ("thresholds", "score", "status"),
    [
        (Thresholds(0.8, 0.2), 0.8, APPROVED),
        (Thresholds(0.8, 0.2), 0.79999, PENDING),
        (Thresholds(0.8, 0.2), 0.2, PENDING),
        (Thresholds(0.8, 0.2), 0.19999, DECLINED),
        (Thresholds(0.8, 0.2), 0.0, DECLINED),
        (Thresholds(0.8, 0.2), 1.0, APPROVED),
        (Thresholds(0.5, 0.5), 0.5, APPROVED),
        (Thresholds(0.5, 0.5), 0.49, DECLINED),
        (Thresholds(approve=0.9), 0.0, PENDING),
        (Thresholds(decline=0.3), 1.0, PENDING),
        (Thresholds(decline=0.3), 0.1, DECLINED),
        (Thresholds.off(), 1.0, PENDING),
        (Thresholds.off(), 0.0, PENDING),
        (Thresholds(0.0, 0.0), 0.0, APPROVED),
    ],
)
def test_decide(thresholds: Thresholds, score: float, status: Status) -> None:
    assert thresholds.decide(score) is status


@pytest.mark.parametrize(
    "kwargs",
    [
        {"approve": 0.2, "decline": 0.8},
        {"approve": 1.1},
        {"decline": -0.1},
        {"approve": math.nan},
        {"approve": math.inf},
        {"approve": True},
        {"approve": "0.5"},
    ],
)
def test_refused_thresholds(kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidInput):
        Thresholds(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("score", [-0.0001, 1.0001, math.nan, math.inf, -math.inf, True, None, "1"])
def test_check_score_refuses(score: object) -> None:
    with pytest.raises(InvalidInput, match="between 0 and 1"):
        check_score(score)


def test_round_trip() -> None:
    for t in (Thresholds(0.9, 0.1), Thresholds(approve=0.5), Thresholds.off()):
        assert Thresholds.from_dict(t.to_dict()) == t
    assert Thresholds.off().is_off and not Thresholds(decline=0.1).is_off


unit = st.floats(min_value=0, max_value=1)


@given(unit, unit, unit)
def test_decision_is_monotonic_in_the_score(a: float, b: float, score: float) -> None:
    t = Thresholds(max(a, b), min(a, b))
    rank = {DECLINED: 0, PENDING: 1, APPROVED: 2}
    higher = min(1.0, score + 0.01)
    assert rank[t.decide(score)] <= rank[t.decide(higher)]
