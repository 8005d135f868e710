"""``verihook inbox prune --older-than``: what a duration is, and what it is not."""

from __future__ import annotations

import pytest

from verihook.cli.inbox import parse_duration


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
    ],
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "text", ["", "30", "d", "-1d", "+1d", "1.5d", "30x", "30 d", "1d2h", "٣d", "30dd", "1e3s"]
)
def test_not_durations(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration(text)
