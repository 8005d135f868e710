from __future__ import annotations

import pytest

from verihook.exceptions import Conflict, InvalidInput
from verihook.format import EventType, Status, WebhookEvent
from verihook.provider.thresholds import Thresholds
from verihook.provider.verifications import (
    Decision,
    Stage,
    Verification,
    check_key,
    complete,
    new_verification,
    review,
)

KEY = "0b5e2a3c-9f1d-4e8a-b7c6-1d2e3f4a5b6c"
T0 = 1_700_000_000.5


def created() -> Verification:
    return new_verification(KEY, T0)


def test_new_verification() -> None:
    v = created()
    assert (v.key, v.status, v.stage, v.score, v.created, v.updated, v.processed) == (
        KEY,
        Status.PENDING,
        Stage.CREATED,
        None,
        1_700_000_000,
        1_700_000_000,
        None,
    )
    assert new_verification(KEY.upper(), T0).key == KEY
    assert check_key(new_verification(None, T0).key)


@pytest.mark.parametrize("key", ["", "nope", KEY[:-1], "{" + KEY + "}", KEY.replace("-", ""), 42])
def test_keys_must_be_uuids(key: object) -> None:
    with pytest.raises(InvalidInput, match="UUID"):
        new_verification(key, T0)  # type: ignore[arg-type]


def test_completion_without_automation_waits_for_review() -> None:
    t = complete(created(), 0.5, Thresholds.off(), T0 + 60)
    assert t.verification.stage is Stage.COMPLETED
    assert t.events == (
        WebhookEvent(
            event=EventType.VERIFICATION_COMPLETED,
            key=KEY,
            status=Status.PENDING,
            created=1_700_000_000,
            updated=1_700_000_060,
            processed=1_700_000_060,
        ),
    )
    r = review(t.verification, "approve", T0 + 120)
    assert (r.verification.stage, r.verification.status) == (Stage.REVIEWED, Status.APPROVED)
    assert r.events == (
        WebhookEvent(
            event=EventType.VERIFICATION_REVIEWED,
            key=KEY,
            status=Status.APPROVED,
            created=1_700_000_000,
            updated=1_700_000_120,
            processed=1_700_000_060,
        ),
    )


@pytest.mark.parametrize(("score", "status"), [(0.95, Status.APPROVED), (0.05, Status.DECLINED)])
def test_a_decisive_score_reviews_at_once(score: float, status: Status) -> None:
    t = complete(created(), score, Thresholds(0.9, 0.1), T0 + 1)
    assert (t.verification.stage, t.verification.status) == (Stage.REVIEWED, status)
    assert [(e.event, e.status) for e in t.events] == [
        (EventType.VERIFICATION_COMPLETED, status),
        (EventType.VERIFICATION_REVIEWED, status),
    ]
    # Receivers order by (rank, updated, processed): REVIEWED comes out last.
    assert t.events[0].order < t.events[1].order


def test_refused_transitions() -> None:
    done = complete(created(), 0.5, Thresholds.off(), T0).verification
    reviewed = review(done, Decision.DECLINE, T0).verification
    with pytest.raises(Conflict, match="already completed"):
        complete(done, 0.5, Thresholds.off(), T0)
    with pytest.raises(Conflict, match="already reviewed"):
        complete(reviewed, 0.5, Thresholds.off(), T0)
    with pytest.raises(Conflict, match="not completed"):
        review(created(), "approve", T0)
    with pytest.raises(Conflict, match="already reviewed"):
        review(reviewed, "approve", T0)
    with pytest.raises(InvalidInput, match="approve"):
        review(done, "maybe", T0)
    with pytest.raises(InvalidInput, match="between 0 and 1"):
        complete(created(), float("nan"), Thresholds.off(), T0)


def test_a_clock_going_backwards_never_orders_events_backwards() -> None:
    done = complete(created(), 0.5, Thresholds.off(), T0 + 100).verification
    r = review(done, "approve", T0 + 50)
    assert r.events[0].updated == done.updated
