from __future__ import annotations

import orjson
import pytest

from verihook.exceptions import InvalidEvent, MalformedBody
from verihook.format import (
    EventType,
    Status,
    UnknownEvent,
    WebhookEvent,
    parse_event,
    parse_event_object,
)

KEY = "b76e244e-26a3-49ef-9c72-3e599bf0b5f2"
WIRE = (
    b'{"event":"VERIFICATION_COMPLETED","key":"b76e244e-26a3-49ef-9c72-3e599bf0b5f2",'
    b'"status":"pending","created":1582628711,"updated":1582628999,"processed":1582628999}'
)


def wire(**changes: object) -> dict[str, object]:
    data: dict[str, object] = orjson.loads(WIRE)
    data.update(changes)
    return data


def without(name: str) -> dict[str, object]:
    data = wire()
    del data[name]
    return data


def test_parse_the_guides_sample(event: WebhookEvent) -> None:
    assert parse_event(WIRE) == event
    assert parse_event(WIRE.decode()) == event


def test_to_json_is_compact_and_in_wire_order(event: WebhookEvent) -> None:
    assert event.to_json() == WIRE
    assert list(event.to_dict()) == ["event", "key", "status", "created", "updated", "processed"]


def test_extra_fields_are_kept_in_order_after_the_six() -> None:
    body = orjson.dumps(wire(zeta="ü", alpha=[1, {"x": None}]))
    parsed = parse_event(body)
    assert isinstance(parsed, WebhookEvent)
    assert parsed.extra == {"zeta": "ü", "alpha": [1, {"x": None}]}
    assert parsed.to_json() == body


def test_extra_cannot_override_a_field(event: WebhookEvent) -> None:
    forged = WebhookEvent(
        event=event.event,
        key=event.key,
        status=event.status,
        created=event.created,
        updated=event.updated,
        processed=event.processed,
        extra={"status": "approved"},
    )
    assert forged.to_dict()["status"] == "pending"


def test_key_is_canonicalised_to_lower_case() -> None:
    parsed = parse_event(orjson.dumps(wire(key=KEY.upper())))
    assert isinstance(parsed, WebhookEvent)
    assert parsed.key == KEY


def test_unknown_event_is_kept_not_refused() -> None:
    body = orjson.dumps(wire(event="IDENTITY_DELETED", anything="goes"))
    parsed = parse_event(body)
    assert isinstance(parsed, UnknownEvent)
    assert parsed.event == "IDENTITY_DELETED"
    assert parsed.key == KEY
    assert parsed.payload["anything"] == "goes"
    assert orjson.loads(parsed.to_json()) == orjson.loads(body)
    assert len(parsed.fingerprint) == 64


def test_unknown_event_without_a_string_key() -> None:
    parsed = parse_event_object({"event": "OTHER", "key": 5})
    assert isinstance(parsed, UnknownEvent)
    assert parsed.key is None


@pytest.mark.parametrize(
    ("obj", "field"),
    [
        ([], "JSON object"),
        ("text", "JSON object"),
        (None, "JSON object"),
        (without("event"), "'event'"),
        (wire(event=""), "'event'"),
        (wire(event=1), "'event'"),
        (without("key"), "'key'"),
        (without("status"), "'status'"),
        (without("created"), "'created'"),
        (without("updated"), "'updated'"),
        (without("processed"), "'processed'"),
        (wire(status="done"), "'status'"),
        (wire(status="PENDING"), "'status'"),
        (wire(status=1), "'status'"),
        (wire(key="not-a-uuid"), "'key'"),
        (wire(key=KEY.replace("-", "")), "'key'"),
        (wire(key=KEY[:-1] + "g"), "'key'"),
        (wire(key="b76e244e-26a3-49ef-9c72-3e599bf0b5f-"), "'key'"),
        (wire(key=None), "'key'"),
        (wire(created="1582628711"), "'created'"),
        (wire(updated=1582628999.5), "'updated'"),
        (wire(processed=True), "'processed'"),
        (wire(created=-1), "'created'"),
        (wire(created=2**53), "'created'"),
        (wire(event="VERIFICATION_REVIEWED"), "never pending"),
    ],
)
def test_invalid_objects_name_the_field(obj: object, field: str) -> None:
    with pytest.raises(InvalidEvent, match=field) as caught:
        parse_event_object(obj)
    assert caught.value.status_code == 400


@pytest.mark.parametrize("body", [b"", b"{", b"nope", b"\xff\xfe", b'{"a":1}x', "{"])
def test_not_json_is_malformed_body(body: bytes | str) -> None:
    with pytest.raises(MalformedBody):
        parse_event(body)


def test_built_by_hand_gets_the_same_checks() -> None:
    with pytest.raises(InvalidEvent, match="never pending"):
        WebhookEvent(
            event=EventType.VERIFICATION_REVIEWED,
            key=KEY,
            status=Status.PENDING,
            created=1,
            updated=1,
            processed=1,
        )
    with pytest.raises(InvalidEvent, match="'event'"):
        WebhookEvent(
            event="VERIFICATION_COMPLETED",  # type: ignore[arg-type]
            key=KEY,
            status=Status.PENDING,
            created=1,
            updated=1,
            processed=1,
        )


def test_events_are_frozen(event: WebhookEvent) -> None:
    with pytest.raises(AttributeError):
        event.status = Status.APPROVED  # type: ignore[misc]


def test_order_rank_and_fingerprint(event: WebhookEvent) -> None:
    reviewed = parse_event(orjson.dumps(wire(event="VERIFICATION_REVIEWED", status="approved")))
    assert isinstance(reviewed, WebhookEvent)
    assert EventType.VERIFICATION_COMPLETED.rank == 1
    assert EventType.VERIFICATION_REVIEWED.rank == 2
    assert event.order == (1, 1582628999, 1582628999)
    assert reviewed.order > event.order
    assert event.fingerprint == parse_event(WIRE).fingerprint
    assert event.fingerprint != reviewed.fingerprint
    assert hash(event) == hash(parse_event(WIRE))
