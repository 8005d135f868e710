"""The webhook event: its two types, three statuses, and strict parsing from JSON."""

from __future__ import annotations

import enum
import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from verihook.exceptions import InvalidEvent, MalformedBody

__all__ = [
    "EventType",
    "Status",
    "UnknownEvent",
    "WebhookEvent",
    "parse_event",
    "parse_event_object",
]


class EventType(enum.StrEnum):
    VERIFICATION_COMPLETED = "VERIFICATION_COMPLETED"
    VERIFICATION_REVIEWED = "VERIFICATION_REVIEWED"

    @property
    def rank(self) -> int:
        """Position in a verification's life: a REVIEWED event always comes after COMPLETED."""
        return 2 if self is EventType.VERIFICATION_REVIEWED else 1


class Status(enum.StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    DECLINED = "declined"


_FIELDS = ("event", "key", "status", "created", "updated", "processed")
_TIMESTAMPS = ("created", "updated", "processed")
_EVENT_TYPES = {e.value: e for e in EventType}
_STATUSES = {s.value: s for s in Status}
_UUID = re.compile(
    "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
).fullmatch
_new_event = object.__new__
# A JSON integer beyond this is not a plausible unix time (and not a JS safe integer).
_MAX_TIMESTAMP = 2**53 - 1


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    """One verification event, as on the wire. ``extra`` keeps unknown fields, in order."""

    event: EventType
    key: str
    status: Status
    created: int
    updated: int
    processed: int
    extra: Mapping[str, Any] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        # Built by hand, an event gets the same checks as one parsed from the wire.
        _check_event(self)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "event": self.event.value,
            "key": self.key,
            "status": self.status.value,
            "created": self.created,
            "updated": self.updated,
            "processed": self.processed,
        }
        for name, value in self.extra.items():
            data.setdefault(name, value)
        return data

    def to_json(self) -> bytes:
        """Compact JSON, fields in the wire order, as Node's JSON.stringify writes it."""
        return orjson.dumps(self.to_dict())

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the canonical JSON: the identity of an event without a webhook-id."""
        return hashlib.sha256(self.to_json()).hexdigest()

    @property
    def order(self) -> tuple[int, int, int]:
        """Later events compare greater: (rank, updated, processed)."""
        return (self.event.rank, self.updated, self.processed)


@dataclass(frozen=True, slots=True)
class UnknownEvent:
    """A well-formed event whose name this version does not know; kept, never a crash."""

    event: str
    payload: Mapping[str, Any] = field(hash=False)

    @property
    def key(self) -> str | None:
        key = self.payload.get("key")
        return key if isinstance(key, str) else None

    def to_json(self) -> bytes:
        return orjson.dumps(dict(self.payload))

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(self.to_json()).hexdigest()


def parse_event(data: bytes | str) -> WebhookEvent | UnknownEvent:
    """Parse a plaintext JSON body. Raises MalformedBody (not JSON) or InvalidEvent."""
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise MalformedBody() from None
    return parse_event_object(obj)


def parse_event_object(obj: object) -> WebhookEvent | UnknownEvent:
    if not isinstance(obj, dict):
        raise InvalidEvent("body must be a JSON object")
    name = obj.get("event")
    if not isinstance(name, str) or not name:
        raise InvalidEvent("field 'event' must be a non-empty string")
    event_type = _EVENT_TYPES.get(name)
    if event_type is None:
        return UnknownEvent(event=name, payload=obj)
    try:
        key = obj["key"]
        status_name = obj["status"]
        created = obj["created"]
        updated = obj["updated"]
        processed = obj["processed"]
    except KeyError as missing:
        raise InvalidEvent(f"field '{missing.args[0]}' is missing") from None
    status = _STATUSES.get(status_name) if isinstance(status_name, str) else None
    if status is None:
        raise InvalidEvent("field 'status' must be pending, approved or declined")
    # The same checks as _check_event, inline: this runs once per received webhook.
    if type(key) is not str or _UUID(key) is None:
        raise InvalidEvent("field 'key' must be a UUID")
    if type(created) is not int or not 0 <= created <= _MAX_TIMESTAMP:
        raise InvalidEvent("field 'created' must be an integer of unix seconds")
    if type(updated) is not int or not 0 <= updated <= _MAX_TIMESTAMP:
        raise InvalidEvent("field 'updated' must be an integer of unix seconds")
    if type(processed) is not int or not 0 <= processed <= _MAX_TIMESTAMP:
        raise InvalidEvent("field 'processed' must be an integer of unix seconds")
    if event_type is EventType.VERIFICATION_REVIEWED and status is Status.PENDING:
        raise InvalidEvent("a VERIFICATION_REVIEWED event is approved or declined, never pending")
    extra = {k: v for k, v in obj.items() if k not in _FIELDS} if len(obj) > 6 else {}
    # Every field is checked above; skip __init__ and its second round of the same checks,
    # and fill the slots through their descriptors (cheaper than object.__setattr__).
    event = _new_event(WebhookEvent)
    _SET_EVENT(event, event_type)
    _SET_KEY(event, key.lower())
    _SET_STATUS(event, status)
    _SET_CREATED(event, created)
    _SET_UPDATED(event, updated)
    _SET_PROCESSED(event, processed)
    _SET_EXTRA(event, extra)
    return event


def _slot_setter(name: str) -> Callable[[WebhookEvent, Any], None]:
    setter: Callable[[WebhookEvent, Any], None] = WebhookEvent.__dict__[name].__set__
    return setter


_SET_EVENT = _slot_setter("event")
_SET_KEY = _slot_setter("key")
_SET_STATUS = _slot_setter("status")
_SET_CREATED = _slot_setter("created")
_SET_UPDATED = _slot_setter("updated")
_SET_PROCESSED = _slot_setter("processed")
_SET_EXTRA = _slot_setter("extra")


def _check_event(event: WebhookEvent) -> None:
    if not isinstance(event.event, EventType):
        raise InvalidEvent("field 'event' must be an EventType")
    if not isinstance(event.status, Status):
        raise InvalidEvent("field 'status' must be pending, approved or declined")
    canonical = _canonical_uuid(event.key)
    if canonical is None:
        raise InvalidEvent("field 'key' must be a UUID")
    if canonical != event.key:
        object.__setattr__(event, "key", canonical)
    for fname in _TIMESTAMPS:
        value = getattr(event, fname)
        # bool is an int subclass; true is not a timestamp.
        if type(value) is not int or not 0 <= value <= _MAX_TIMESTAMP:
            raise InvalidEvent(f"field '{fname}' must be an integer of unix seconds")
    if event.event is EventType.VERIFICATION_REVIEWED and event.status is Status.PENDING:
        raise InvalidEvent("a VERIFICATION_REVIEWED event is approved or declined, never pending")


def _canonical_uuid(value: object) -> str | None:
    """The lower-case 8-4-4-4-12 form, or None. Faster than uuid.UUID on the hot path."""
    if type(value) is not str or _UUID(value) is None:
        return None
    return value.lower()
