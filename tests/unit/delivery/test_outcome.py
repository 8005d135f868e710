from __future__ import annotations

import pytest

from verihook.delivery.outcome import (
    MAX_RETRY_AFTER,
    Decision,
    Next,
    Outcome,
    classify_status,
    decide,
    parse_retry_after,
)
from verihook.delivery.retry import RetrySchedule

NOW = 1_700_000_000.0
SCHEDULE = RetrySchedule(random=lambda: 0.5)


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, Outcome.SUCCESS),
        (201, Outcome.SUCCESS),
        (204, Outcome.SUCCESS),
        (299, Outcome.SUCCESS),
        (301, Outcome.REDIRECT),
        (302, Outcome.REDIRECT),
        (307, Outcome.REDIRECT),
        (308, Outcome.REDIRECT),
        (400, Outcome.HTTP_ERROR),
        (404, Outcome.HTTP_ERROR),
        (410, Outcome.GONE),
        (429, Outcome.THROTTLED),
        (500, Outcome.HTTP_ERROR),
        (503, Outcome.THROTTLED),
        (100, Outcome.HTTP_ERROR),
    ],
)
def test_classify_status(status: int, outcome: Outcome) -> None:
    assert classify_status(status) is outcome


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("", None),
        ("120", NOW + 120),
        (" 7 ", NOW + 7),
        ("99999999", NOW + MAX_RETRY_AFTER),
        ("-5", None),
        ("1.5", None),
        ("soon", None),
        ("Tue, 14 Nov 2023 22:15:20 GMT", 1_700_000_120.0),
        ("Tue, 14 Nov 2023 22:00:00 GMT", NOW),  # in the past: now
        ("Sun, 14 Nov 2100 22:00:00 GMT", NOW + MAX_RETRY_AFTER),
    ],
)
def test_parse_retry_after(header: str | None, expected: float | None) -> None:
    assert parse_retry_after(header, NOW) == expected


@pytest.mark.parametrize(
    ("outcome", "attempts", "retry_after", "expected"),
    [
        (Outcome.SUCCESS, 1, None, Decision(Next.SUCCEEDED)),
        (Outcome.SUCCESS, 10, None, Decision(Next.SUCCEEDED)),
        (Outcome.HTTP_ERROR, 1, None, Decision(Next.RETRY, NOW + 5)),
        (Outcome.REDIRECT, 2, None, Decision(Next.RETRY, NOW + 300)),
        (Outcome.TIMEOUT, 3, None, Decision(Next.RETRY, NOW + 1800)),
        (Outcome.CONNECTION_ERROR, 1, None, Decision(Next.RETRY, NOW + 5)),
        (Outcome.TLS_ERROR, 1, None, Decision(Next.RETRY, NOW + 5)),
        (Outcome.BLOCKED, 1, None, Decision(Next.RETRY, NOW + 5)),
        (Outcome.HTTP_ERROR, 10, None, Decision(Next.FAILED)),
        (Outcome.GONE, 1, None, Decision(Next.FAILED, None, "endpoint answered 410 Gone")),
        (Outcome.INVALID, 1, None, Decision(Next.FAILED)),
        # Retry-After later than the schedule wins; earlier does not shorten the backoff.
        (Outcome.THROTTLED, 1, NOW + 600, Decision(Next.RETRY, NOW + 600)),
        (Outcome.THROTTLED, 2, NOW + 60, Decision(Next.RETRY, NOW + 300)),
        (Outcome.THROTTLED, 1, None, Decision(Next.RETRY, NOW + 5)),
        (Outcome.THROTTLED, 10, NOW + 60, Decision(Next.FAILED)),
        # Retry-After only counts on 429/503.
        (Outcome.HTTP_ERROR, 1, NOW + 600, Decision(Next.RETRY, NOW + 5)),
    ],
)
def test_decide(
    outcome: Outcome, attempts: int, retry_after: float | None, expected: Decision
) -> None:
    assert decide(outcome, attempts, NOW, SCHEDULE, retry_after) == expected
