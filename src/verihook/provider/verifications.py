"""A verification's lifecycle, pure: created -> completed (score) -> reviewed (approved/declined).

Each transition returns the new state and the webhook events it causes; the store writes
both in one transaction (see ``outbox``). Times come from the caller's clock.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass, replace
from typing import Any

from verihook.exceptions import Conflict, InvalidInput
from verihook.format import EventType, Status, WebhookEvent
from verihook.provider.thresholds import Thresholds, check_score

__all__ = [
    "Decision",
    "Stage",
    "Transition",
    "Verification",
    "check_key",
    "complete",
    "new_verification",
    "review",
]


class Stage(enum.StrEnum):
    CREATED = "created"
    COMPLETED = "completed"
    REVIEWED = "reviewed"


class Decision(enum.StrEnum):
    APPROVE = "approve"
    DECLINE = "decline"

    @property
    def status(self) -> Status:
        return Status.APPROVED if self is Decision.APPROVE else Status.DECLINED

    @classmethod
    def parse(cls, value: str | Decision) -> Decision:
        try:
            return cls(value.lower() if isinstance(value, str) else value)
        except ValueError:
            raise InvalidInput("review decision must be 'approve' or 'decline'") from None


@dataclass(frozen=True, slots=True)
class Verification:
    """``created``/``updated``/``processed`` are the wire's integer seconds;
    ``completed_at``/``reviewed_at`` the exact clock readings."""

    key: str
    status: Status
    score: float | None
    created: int
    updated: int
    processed: int | None
    completed_at: float | None = None
    reviewed_at: float | None = None

    @property
    def stage(self) -> Stage:
        if self.reviewed_at is not None:
            return Stage.REVIEWED
        if self.completed_at is not None:
            return Stage.COMPLETED
        return Stage.CREATED

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "stage": self.stage.value,
            "status": self.status.value,
            "score": self.score,
            "created": self.created,
            "updated": self.updated,
            "processed": self.processed,
        }


@dataclass(frozen=True, slots=True)
class Transition:
    verification: Verification
    events: tuple[WebhookEvent, ...]


def check_key(key: object) -> str:
    """A verification key is a UUID; returned in its lower-case canonical form."""
    if not isinstance(key, str):
        raise InvalidInput("verification key must be a UUID")
    try:
        parsed = uuid.UUID(key)
    except ValueError:
        raise InvalidInput("verification key must be a UUID") from None
    canonical = str(parsed)
    if canonical != key.lower():
        # uuid.UUID also takes braces, urn: prefixes and bare hex; the wire wants one form.
        raise InvalidInput("verification key must be a UUID like 8-4-4-4-12 hex digits")
    return canonical


def new_verification(key: str | None, now: float) -> Verification:
    canonical = str(uuid.uuid4()) if key is None else check_key(key)
    seconds = int(now)
    return Verification(
        key=canonical,
        status=Status.PENDING,
        score=None,
        created=seconds,
        updated=seconds,
        processed=None,
    )


def complete(
    verification: Verification, score: object, thresholds: Thresholds, now: float
) -> Transition:
    """COMPLETED with the automated status; a decided status adds REVIEWED at once."""
    value = check_score(score)
    if verification.stage is not Stage.CREATED:
        raise Conflict(f"verification {verification.key} is already {verification.stage.value}")
    status = thresholds.decide(value)
    seconds = max(int(now), verification.created)
    completed = replace(
        verification,
        status=status,
        score=value,
        updated=seconds,
        processed=seconds,
        completed_at=now,
    )
    events = [_event(completed, EventType.VERIFICATION_COMPLETED)]
    if status is not Status.PENDING:
        completed = replace(completed, reviewed_at=now)
        events.append(_event(completed, EventType.VERIFICATION_REVIEWED))
    return Transition(completed, tuple(events))


def review(verification: Verification, decision: Decision | str, now: float) -> Transition:
    """A manual review of a completed verification that is still pending."""
    chosen = Decision.parse(decision)
    if verification.stage is Stage.CREATED:
        raise Conflict(f"verification {verification.key} is not completed yet")
    if verification.stage is Stage.REVIEWED:
        raise Conflict(f"verification {verification.key} is already reviewed")
    reviewed = replace(
        verification,
        status=chosen.status,
        # Never earlier than the COMPLETED event, so receivers order them right.
        updated=max(int(now), verification.updated),
        reviewed_at=now,
    )
    return Transition(reviewed, (_event(reviewed, EventType.VERIFICATION_REVIEWED),))


def _event(verification: Verification, event_type: EventType) -> WebhookEvent:
    assert verification.processed is not None
    return WebhookEvent(
        event=event_type,
        key=verification.key,
        status=verification.status,
        created=verification.created,
        updated=verification.updated,
        processed=verification.processed,
    )
