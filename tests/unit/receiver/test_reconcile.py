"""Reconciliation: the latest event by (rank, updated, processed) wins, in any arrival order."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from verihook.format import EventType, Status, WebhookEvent
from verihook.receiver.reconcile import VerificationState, reconcile

KEY = "b76e244e-26a3-49ef-9c72-3e599bf0b5f2"
C, R = EventType.VERIFICATION_COMPLETED, EventType.VERIFICATION_REVIEWED
P, A, D = Status.PENDING, Status.APPROVED, Status.DECLINED


def event(
    kind: EventType, status: Status, updated: int, processed: int | None = None, **overrides: Any
) -> WebhookEvent:
    fields: dict[str, Any] = {
        "event": kind,
        "key": KEY,
        "status": status,
        "created": 1000,
        "updated": updated,
        "processed": updated if processed is None else processed,
    }
    fields.update(overrides)
    return WebhookEvent(**fields)


def state(e: WebhookEvent) -> VerificationState:
    return VerificationState.from_event(e)


@pytest.mark.parametrize(
    ("current", "incoming", "expected"),
    [
        # Nothing known yet: the first event is the state.
        (None, event(C, P, 100), event(C, P, 100)),
        # A later update of the same rank moves forward.
        (event(C, P, 100), event(C, A, 110), event(C, A, 110)),
        # REVIEWED outranks COMPLETED even when its timestamps are older.
        (event(C, A, 200), event(R, D, 100), event(R, D, 100)),
        # A late COMPLETED never undoes a review.
        (event(R, A, 100), event(C, P, 500), None),
        # An older update of the same rank is ignored.
        (event(C, A, 110), event(C, P, 100), None),
        # processed breaks a tie on updated.
        (event(C, P, 100, 100), event(C, A, 100, 105), event(C, A, 100, 105)),
        (event(C, A, 100, 105), event(C, P, 100, 100), None),
        # The same event again changes nothing.
        (event(R, A, 120), event(R, A, 120), None),
        # Full ties on the wire order: status decides, whatever arrives first.
        (event(C, P, 100), event(C, A, 100), event(C, A, 100)),
        (event(C, A, 100), event(C, P, 100), None),
        (event(R, A, 100), event(R, D, 100), event(R, D, 100)),
        (event(R, D, 100), event(R, A, 100), None),
    ],
)
def test_reconcile_table(
    current: WebhookEvent | None, incoming: WebhookEvent, expected: WebhookEvent | None
) -> None:
    before = None if current is None else state(current)
    after = reconcile(before, incoming)
    assert after == (None if expected is None else state(expected))


def test_reconcile_refuses_another_verification() -> None:
    other = event(C, P, 100, key="00000000-0000-4000-8000-000000000000")
    with pytest.raises(ValueError):
        reconcile(state(event(C, P, 100)), other)


def test_state_round_trips_through_a_dict() -> None:
    s = state(event(R, D, 120, 130))
    assert VerificationState.from_dict(s.to_dict()) == s
    assert s.to_dict() == {
        "key": KEY,
        "event": "VERIFICATION_REVIEWED",
        "status": "declined",
        "created": 1000,
        "updated": 120,
        "processed": 130,
    }


LIFE = [event(C, P, 100), event(C, A, 110), event(R, A, 120)]


@pytest.mark.parametrize(
    "arrivals",
    sorted(set(itertools.permutations([*LIFE, LIFE[0], LIFE[2]])), key=repr),
)
def test_every_arrival_order_converges(arrivals: tuple[WebhookEvent, ...]) -> None:
    current: VerificationState | None = None
    changes: list[tuple[VerificationState | None, VerificationState]] = []
    for incoming in arrivals:
        new = reconcile(current, incoming)
        if new is not None:
            changes.append((current, new))
            current = new
    assert current == state(LIFE[2])
    # on_change would fire once per real change: each one strictly forward, never a repeat.
    for old, new in changes:
        assert old is None or new.order > old.order
    assert len(changes) == len({new for _, new in changes})
    # Exactly the events that were the latest so far when they arrived caused a change.
    expected = 0
    best: tuple[int, ...] | None = None
    for incoming in arrivals:
        if best is None or state(incoming).order > best:
            best = state(incoming).order
            expected += 1
    assert len(changes) == expected
