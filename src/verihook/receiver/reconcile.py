"""A verification's reconciled state: the latest event by (rank, updated, processed), pure.

Webhooks arrive late, twice or out of order; folding them through ``reconcile`` in any
order gives the same final state, and reports a change only when the state really moves.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from verihook.format import EventType, Status, WebhookEvent

__all__ = ["VerificationState", "reconcile"]

# Ties on (rank, updated, processed) with a different status need a winner that does not
# depend on arrival order; the more final and the more cautious status wins.
_STATUS_RANK = {Status.PENDING: 0, Status.APPROVED: 1, Status.DECLINED: 2}


@dataclass(frozen=True, slots=True)
class VerificationState:
    """What the integrator should believe about one verification right now."""

    key: str
    event: EventType
    status: Status
    created: int
    updated: int
    processed: int

    @classmethod
    def from_event(cls, event: WebhookEvent) -> VerificationState:
        return cls(
            key=event.key,
            event=event.event,
            status=event.status,
            created=event.created,
            updated=event.updated,
            processed=event.processed,
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> VerificationState:
        return cls(
            key=data["key"],
            event=EventType(data["event"]),
            status=Status(data["status"]),
            created=int(data["created"]),
            updated=int(data["updated"]),
            processed=int(data["processed"]),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "event": self.event.value,
            "status": self.status.value,
            "created": self.created,
            "updated": self.updated,
            "processed": self.processed,
        }

    @property
    def order(self) -> tuple[int, int, int, int, int]:
        """A total order: (rank, updated, processed), then status and created break ties."""
        return (
            self.event.rank,
            self.updated,
            self.processed,
            _STATUS_RANK[self.status],
            self.created,
        )


def reconcile(current: VerificationState | None, event: WebhookEvent) -> VerificationState | None:
    """The new state once ``event`` is known, or None when it changes nothing.

    An event older than (or equal to) the current state never moves it backwards.
    """
    candidate = VerificationState.from_event(event)
    if current is None:
        return candidate
    if candidate.key != current.key:
        raise ValueError("event and state belong to different verifications")
    if candidate.order > current.order:
        return candidate
    return None
