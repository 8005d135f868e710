"""Handler registration: which user functions run for which events, by a stable name.

A handler run in the inbox names its handler, so a restarted process finds the function
again by name; the name is ``<kind>:<module>.<qualname>`` unless given explicitly.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from verihook.exceptions import InvalidInput
from verihook.format import EventType, UnknownEvent, WebhookEvent

__all__ = ["Handler", "HandlerKind", "Handlers"]

HandlerKind = Literal["event", "change", "unknown"]
F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True, slots=True)
class Handler:
    name: str
    kind: HandlerKind
    function: Callable[..., Any]
    is_async: bool


class Handlers:
    """A registry of handlers; a ``Receiver`` has one, and can include others."""

    def __init__(self) -> None:
        self._by_name: dict[str, Handler] = {}
        self._by_event: dict[EventType, list[str]] = {t: [] for t in EventType}
        self._change: list[str] = []
        self._unknown: list[str] = []

    def on(self, event_type: EventType | str, *, name: str | None = None) -> Callable[[F], F]:
        """``@handlers.on("VERIFICATION_REVIEWED")``: called with the WebhookEvent."""
        try:
            kind = EventType(event_type)
        except ValueError:
            raise InvalidInput(
                f"unknown event type {event_type!r}: use on_unknown for events this version"
                " does not know"
            ) from None

        def register(function: F) -> F:
            handler = self._add("event", function, name, prefix=f"on:{kind.value}")
            self._by_event[kind].append(handler.name)
            return function

        return register

    def on_change(self, function: F | None = None, *, name: str | None = None) -> Any:
        """``@handlers.on_change``: called with (old state or None, new state)."""

        def register(fn: F) -> F:
            self._change.append(self._add("change", fn, name, prefix="on_change").name)
            return fn

        return register if function is None else register(function)

    def on_unknown(self, function: F | None = None, *, name: str | None = None) -> Any:
        """``@handlers.on_unknown``: called with the UnknownEvent."""

        def register(fn: F) -> F:
            self._unknown.append(self._add("unknown", fn, name, prefix="on_unknown").name)
            return fn

        return register if function is None else register(function)

    def include(self, other: Handlers) -> None:
        """Add every handler of ``other`` (e.g. a module's handlers loaded by the CLI)."""
        for handler in other._by_name.values():
            self._insert(handler)
        for kind, names in other._by_event.items():
            self._by_event[kind].extend(names)
        self._change.extend(other._change)
        self._unknown.extend(other._unknown)

    def for_event(self, event: WebhookEvent | UnknownEvent) -> list[str]:
        if isinstance(event, WebhookEvent):
            return self._by_event[event.event]
        return self._unknown

    @property
    def change_names(self) -> list[str]:
        return self._change

    def get(self, name: str) -> Handler | None:
        return self._by_name.get(name)

    def __len__(self) -> int:
        return len(self._by_name)

    def _add(
        self, kind: HandlerKind, function: Callable[..., Any], name: str | None, prefix: str
    ) -> Handler:
        if not callable(function):
            raise InvalidInput("a handler must be callable")
        if name is None:
            module = getattr(function, "__module__", None) or "?"
            qualname = getattr(function, "__qualname__", None) or repr(function)
            name = f"{prefix}:{module}.{qualname}"
        handler = Handler(
            name=name,
            kind=kind,
            function=function,
            is_async=inspect.iscoroutinefunction(function),
        )
        self._insert(handler)
        return handler

    def _insert(self, handler: Handler) -> None:
        if handler.name in self._by_name:
            raise InvalidInput(
                f"a handler named {handler.name!r} is already registered; pass name= to tell"
                " them apart"
            )
        self._by_name[handler.name] = handler
