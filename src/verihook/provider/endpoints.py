"""Endpoints, pure: where events go, which ones, with which secrets, how secrets rotate and how
settings change.

Secrets are held as ``WebhookSecret``/``SigningSecret``, whose ``repr`` is masked, so an
endpoint can be logged; ``to_dict(reveal=True)`` is for the one moment they are shown.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from enum import Enum
from typing import Any, Final

from verihook.delivery.address_policy import AddressPolicy
from verihook.exceptions import InvalidInput
from verihook.format import EventType, SigningSecret, WebhookSecret
from verihook.provider.ids import new_endpoint_id

__all__ = [
    "ALL_EVENT_TYPES",
    "DEFAULT_MAX_IN_FLIGHT",
    "DEFAULT_ROTATION_OVERLAP",
    "UNCHANGED",
    "Endpoint",
    "Unchanged",
    "check_max_in_flight",
    "check_rate_limit",
    "check_retry_schedule",
    "new_endpoint",
    "parse_event_filter",
    "rotate_secrets",
    "update_endpoint",
]

ALL_EVENT_TYPES: tuple[EventType, ...] = tuple(EventType)
DEFAULT_ROTATION_OVERLAP = 24 * 3600.0
DEFAULT_MAX_IN_FLIGHT = 16
_MAX_OVERLAP = 30 * 24 * 3600.0
_MAX_RETRY_DELAY = 7 * 24 * 3600.0
_MAX_RETRIES = 50
_MASK = "********"


class Unchanged(Enum):
    """The type of ``UNCHANGED``: "leave this setting as it is", where None means "clear it"."""

    UNCHANGED = "UNCHANGED"

    def __repr__(self) -> str:
        return "UNCHANGED"


UNCHANGED: Final = Unchanged.UNCHANGED


@dataclass(frozen=True, slots=True)
class Endpoint:
    id: str
    url: str
    event_types: tuple[EventType, ...]
    encryption_secret: WebhookSecret | None
    signing_secret: SigningSecret
    previous_signing_secret: SigningSecret | None
    previous_signing_secret_until: float | None
    enabled: bool
    disabled_reason: str | None
    retry_schedule: tuple[float, ...] | None
    max_in_flight: int
    rate_limit: float | None
    created_at: float
    updated_at: float

    @property
    def encrypted(self) -> bool:
        return self.encryption_secret is not None

    def subscribes(self, event_type: EventType) -> bool:
        return event_type in self.event_types

    def signing_secrets(self, now: float) -> list[SigningSecret]:
        """The secrets that sign a request sent at ``now``: the new one, and the previous
        one while its overlap window lasts, so receivers can switch at their own pace."""
        secrets = [self.signing_secret]
        if (
            self.previous_signing_secret is not None
            and self.previous_signing_secret_until is not None
            and now < self.previous_signing_secret_until
        ):
            secrets.append(self.previous_signing_secret)
        return secrets

    def to_dict(self, reveal: bool = False) -> dict[str, Any]:
        def shown(secret: WebhookSecret | SigningSecret | None) -> str | None:
            if secret is None:
                return None
            return secret.reveal() if reveal else _MASK

        return {
            "id": self.id,
            "url": self.url,
            "events": [e.value for e in self.event_types],
            "enabled": self.enabled,
            "disabled_reason": self.disabled_reason,
            "encrypted": self.encrypted,
            "encryption_secret": shown(self.encryption_secret),
            "signing_secret": shown(self.signing_secret),
            "previous_signing_secret_until": (
                self.previous_signing_secret_until
                if self.previous_signing_secret is not None
                else None
            ),
            "retry_schedule": list(self.retry_schedule) if self.retry_schedule else None,
            "max_in_flight": self.max_in_flight,
            "rate_limit": self.rate_limit,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


def parse_event_filter(events: str | Iterable[str | EventType] | None) -> tuple[EventType, ...]:
    """None means every event; otherwise a non-empty subset of the known names."""
    if events is None:
        return ALL_EVENT_TYPES
    names = events.split(",") if isinstance(events, str) else list(events)
    chosen: set[EventType] = set()
    for name in names:
        text = str(name.value if isinstance(name, EventType) else name).strip()
        if not text:
            continue
        try:
            chosen.add(EventType(text.upper()))
        except ValueError:
            shown = text if len(text) <= 40 else text[:40] + "..."
            known = " or ".join(e.value for e in EventType)
            raise InvalidInput(f"unknown event type {shown!r}: expected {known}") from None
    if not chosen:
        raise InvalidInput("event filter must name at least one event type")
    return tuple(e for e in ALL_EVENT_TYPES if e in chosen)


def check_retry_schedule(schedule: Sequence[float] | None) -> tuple[float, ...] | None:
    """Delays in seconds before each attempt (the first usually 0); None = the default."""
    if schedule is None:
        return None
    if isinstance(schedule, str | bytes) or not 1 <= len(schedule) <= _MAX_RETRIES:
        raise InvalidInput(f"retry schedule must list 1 to {_MAX_RETRIES} delays in seconds")
    delays = []
    for delay in schedule:
        if (
            isinstance(delay, bool)
            or not isinstance(delay, int | float)
            or not math.isfinite(delay)
            or not 0 <= delay <= _MAX_RETRY_DELAY
        ):
            raise InvalidInput("each retry delay must be between 0 and 7 days, in seconds")
        delays.append(float(delay))
    return tuple(delays)


def check_max_in_flight(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 1000:
        raise InvalidInput("max in flight must be an integer between 1 and 1000")
    return value


def check_rate_limit(value: float | None) -> float | None:
    """Requests per second, or None for no limit."""
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise InvalidInput("rate limit must be a positive number of requests per second")
    return float(value)


def new_endpoint(
    url: str,
    *,
    policy: AddressPolicy,
    now: float,
    events: str | Iterable[str | EventType] | None = None,
    secret: str | WebhookSecret | None = None,
    encryption: bool = True,
    retry_schedule: Sequence[float] | None = None,
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
    rate_limit: float | None = None,
) -> Endpoint:
    """Validate everything first; generate what was not given."""
    checked = policy.check_url(url)
    event_types = parse_event_filter(events)
    if secret is not None and not encryption:
        raise InvalidInput("an encryption secret was given with encryption turned off")
    encryption_secret: WebhookSecret | None = None
    if encryption:
        encryption_secret = (
            WebhookSecret.generate()
            if secret is None
            else secret
            if isinstance(secret, WebhookSecret)
            else WebhookSecret(secret)
        )
    return Endpoint(
        id=new_endpoint_id(),
        url=checked.url,
        event_types=event_types,
        encryption_secret=encryption_secret,
        signing_secret=SigningSecret.generate(),
        previous_signing_secret=None,
        previous_signing_secret_until=None,
        enabled=True,
        disabled_reason=None,
        retry_schedule=check_retry_schedule(retry_schedule),
        max_in_flight=check_max_in_flight(max_in_flight),
        rate_limit=check_rate_limit(rate_limit),
        created_at=now,
        updated_at=now,
    )


def rotate_secrets(
    endpoint: Endpoint,
    *,
    now: float,
    overlap: float = DEFAULT_ROTATION_OVERLAP,
    rotate_encryption: bool = False,
    encryption_secret: str | WebhookSecret | None = None,
) -> Endpoint:
    """A new signing secret; the current one keeps signing for ``overlap`` seconds.

    The encryption secret has no overlap (a body has one key), so it changes only when asked.
    """
    if (
        isinstance(overlap, bool)
        or not isinstance(overlap, int | float)
        or not math.isfinite(overlap)
        or not 0 <= overlap <= _MAX_OVERLAP
    ):
        raise InvalidInput("rotation overlap must be between 0 seconds and 30 days")
    if encryption_secret is not None and not rotate_encryption:
        raise InvalidInput("an encryption secret was given without rotating encryption")
    new_encryption = endpoint.encryption_secret
    if rotate_encryption:
        new_encryption = (
            WebhookSecret.generate()
            if encryption_secret is None
            else encryption_secret
            if isinstance(encryption_secret, WebhookSecret)
            else WebhookSecret(encryption_secret)
        )
    keep_previous = overlap > 0
    return replace(
        endpoint,
        encryption_secret=new_encryption,
        signing_secret=SigningSecret.generate(),
        previous_signing_secret=endpoint.signing_secret if keep_previous else None,
        previous_signing_secret_until=now + overlap if keep_previous else None,
        updated_at=now,
    )


def update_endpoint(
    endpoint: Endpoint,
    *,
    policy: AddressPolicy,
    now: float,
    url: str | None = None,
    events: str | Iterable[str | EventType] | None = None,
    retry_schedule: Sequence[float] | Unchanged | None = UNCHANGED,
    max_in_flight: int | None = None,
    rate_limit: float | Unchanged | None = UNCHANGED,
) -> Endpoint:
    """The endpoint with the given settings changed, each checked as ``new_endpoint`` checks it.

    None leaves ``url``, ``events`` and ``max_in_flight`` as they are; ``retry_schedule`` and
    ``rate_limit`` are left alone by ``UNCHANGED``, and None puts them back to the default (the
    standard schedule, no limit). Secrets and the enabled state never change here.
    """
    if (
        url is None
        and events is None
        and retry_schedule is UNCHANGED
        and max_in_flight is None
        and rate_limit is UNCHANGED
    ):
        raise InvalidInput("nothing to change")
    return replace(
        endpoint,
        url=endpoint.url if url is None else policy.check_url(url).url,
        event_types=endpoint.event_types if events is None else parse_event_filter(events),
        retry_schedule=(
            endpoint.retry_schedule
            if retry_schedule is UNCHANGED
            else check_retry_schedule(retry_schedule)
        ),
        max_in_flight=(
            endpoint.max_in_flight if max_in_flight is None else check_max_in_flight(max_in_flight)
        ),
        rate_limit=endpoint.rate_limit if rate_limit is UNCHANGED else check_rate_limit(rate_limit),
        updated_at=now,
    )
