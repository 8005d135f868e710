"""Durations on the command line (``--older-than``, ``--since``, ``--overlap``, schedules)."""

from __future__ import annotations

import pytest

from verihook.cli.durations import parse_duration
from verihook.exceptions import InvalidInput


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90),
        ("15m", 900),
        ("12h", 43_200),
        ("30d", 2_592_000),
        ("2w", 1_209_600),
        ("0s", 0),
        (" 30D ", 2_592_000),
        ("1.5d", 129_600),
        ("250ms", 0.25),
    ],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds
    assert parse_duration(text, bare_seconds=False) == seconds


def test_a_bare_number_is_seconds_only_where_the_option_says_so() -> None:
    assert parse_duration("30") == 30
    with pytest.raises(InvalidInput, match="is not a duration"):
        parse_duration("30", bare_seconds=False)


@pytest.mark.parametrize(
    "text",
    [
        *("", "d", "-1d", "+1d", "1.d", ".5d", "30x", "30 d", "1d2h", "٣d", "30dd", "1e3s", "nan"),
        *("9" * 400, "9" * 400 + "d"),  # float() makes these infinite rather than failing
    ],
)
def test_not_durations(text: str) -> None:
    with pytest.raises(InvalidInput, match="is not a duration"):
        parse_duration(text)
