"""What one attempt's result means: success, retry later, or disable the endpoint. Pure.

2xx succeeds; every 3xx fails (redirects are never followed: a redirect could lead the
sender to an address the policy never checked); 410 Gone disables the endpoint; 429 and
503 may name their own retry time with ``Retry-After``; network failures are retried.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

from verihook.delivery.retry import RetrySchedule

__all__ = [
    "MAX_RETRY_AFTER",
    "Decision",
    "Next",
    "Outcome",
    "classify_status",
    "decide",
    "parse_retry_after",
]

# A Retry-After further than this is clamped: an endpoint cannot park its queue forever.
MAX_RETRY_AFTER = 24 * 3600.0


class Outcome(enum.StrEnum):
    """The ``outcome`` of one attempt row."""

    SUCCESS = "success"
    HTTP_ERROR = "http_error"  # 4xx/5xx other than the cases below
    REDIRECT = "redirect"  # 3xx
    GONE = "gone"  # 410: the endpoint asks to be disabled
    THROTTLED = "throttled"  # 429 or 503
    TIMEOUT = "timeout"
    CONNECTION_ERROR = "connection_error"  # refused, reset, closed early
    TLS_ERROR = "tls_error"
    BLOCKED = "blocked"  # the address policy refused the resolved address
    INVALID = "invalid"  # the delivery itself cannot be built (e.g. a corrupt secret)

    @property
    def succeeded(self) -> bool:
        return self is Outcome.SUCCESS


def classify_status(status_code: int) -> Outcome:
    if 200 <= status_code < 300:
        return Outcome.SUCCESS
    if 300 <= status_code < 400:
        return Outcome.REDIRECT
    if status_code == 410:
        return Outcome.GONE
    if status_code in (429, 503):
        return Outcome.THROTTLED
    return Outcome.HTTP_ERROR


def parse_retry_after(value: str | None, now: float) -> float | None:
    """``Retry-After`` as an absolute time: delta-seconds or an HTTP date; None if unusable."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    if value.isascii() and value.isdigit():
        return now + min(float(value), MAX_RETRY_AFTER)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # HTTP dates are GMT; "-0000" parses as naive
        return None
    at = when.timestamp()
    if math.isnan(at):
        return None
    return min(max(at, now), now + MAX_RETRY_AFTER)


class Next(enum.StrEnum):
    SUCCEEDED = "succeeded"
    RETRY = "pending"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Decision:
    """The delivery's next state. ``disable_reason`` set: disable the endpoint too."""

    state: Next
    next_attempt_at: float | None = None
    disable_reason: str | None = None


def decide(
    outcome: Outcome,
    attempts_made: int,
    now: float,
    schedule: RetrySchedule,
    retry_after: float | None = None,
) -> Decision:
    """After attempt number ``attempts_made`` ended with ``outcome``, what happens next."""
    if outcome is Outcome.SUCCESS:
        return Decision(Next.SUCCEEDED)
    if outcome is Outcome.GONE:
        return Decision(Next.FAILED, disable_reason="endpoint answered 410 Gone")
    if outcome is Outcome.INVALID:
        return Decision(Next.FAILED)
    at = schedule.next_attempt(attempts_made, now)
    if at is None:
        return Decision(Next.FAILED)
    if outcome is Outcome.THROTTLED and retry_after is not None:
        # Honour the endpoint's own time when it asks for a longer wait than ours.
        at = max(at, retry_after)
    return Decision(Next.RETRY, next_attempt_at=at)
