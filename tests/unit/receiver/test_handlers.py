"""Handlers: registration by decorator, stable names, routing by event type."""

from __future__ import annotations

from typing import Any

import pytest

from verihook.exceptions import InvalidInput
from verihook.format import EventType, Status, UnknownEvent, WebhookEvent
from verihook.receiver import Handlers

EVENT = WebhookEvent(
    EventType.VERIFICATION_REVIEWED,
    "b76e244e-26a3-49ef-9c72-3e599bf0b5f2",
    Status.APPROVED,
    1,
    2,
    3,
)
UNKNOWN = UnknownEvent("IDENTITY_DELETED", {"event": "IDENTITY_DELETED"})


def test_decorators_register_and_return_the_function() -> None:
    handlers = Handlers()

    @handlers.on("VERIFICATION_REVIEWED")
    def reviewed(event: Any) -> None: ...

    @handlers.on(EventType.VERIFICATION_COMPLETED)
    async def completed(event: Any) -> None: ...

    @handlers.on_change
    def changed(old: Any, new: Any) -> None: ...

    @handlers.on_unknown(name="mine")
    def unknown(event: Any) -> None: ...

    assert callable(reviewed) and callable(unknown)
    prefix = f"{__name__}.test_decorators_register_and_return_the_function.<locals>"
    assert handlers.for_event(EVENT) == [f"on:VERIFICATION_REVIEWED:{prefix}.reviewed"]
    assert handlers.for_event(UNKNOWN) == ["mine"]
    assert handlers.change_names == [f"on_change:{prefix}.changed"]
    completed_handler = handlers.get(f"on:VERIFICATION_COMPLETED:{prefix}.completed")
    assert completed_handler is not None and completed_handler.is_async
    assert completed_handler.kind == "event"
    assert len(handlers) == 4


def test_include_merges_another_registry() -> None:
    mine, theirs = Handlers(), Handlers()
    theirs.on("VERIFICATION_REVIEWED", name="a")(print)
    theirs.on_change(name="b")(print)
    mine.include(theirs)
    assert mine.for_event(EVENT) == ["a"]
    assert mine.change_names == ["b"]
    with pytest.raises(InvalidInput):
        mine.include(theirs)


def test_refusals() -> None:
    handlers = Handlers()
    with pytest.raises(InvalidInput):
        handlers.on("NOT_AN_EVENT")
    with pytest.raises(InvalidInput):
        handlers.on_change("not callable")  # type: ignore[arg-type]
