"""Every body of the Passbase vectors (made with Node.js crypto) against the format core."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from verihook.exceptions import DecryptionError, InvalidEvent, MalformedBody, WebhookRejected
from verihook.format import (
    DecodeOptions,
    UnknownEvent,
    WebhookEvent,
    WebhookSecret,
    decode_request,
    decrypt,
    parse_event,
)

REPO = Path(__file__).resolve().parents[3]
NAME = "passbase-aes256cbc.json"
SHARED = REPO.parent / "shared" / "vectors" / NAME
COPY = REPO / "tests" / "data" / NAME
SOURCE = SHARED if SHARED.is_file() else COPY
VECTORS: dict[str, Any] = json.loads(SOURCE.read_text(encoding="utf-8"))


def ids(cases: list[dict[str, Any]]) -> list[str]:
    return [case["name"] for case in cases]


def test_the_copy_is_the_shared_file() -> None:
    if not SHARED.is_file():
        pytest.skip(f"{SHARED} is absent: the tests read the copy in tests/data/")
    assert COPY.read_bytes() == SHARED.read_bytes()


def test_every_section_is_present() -> None:
    assert len(VECTORS["valid"]) >= 15
    assert len(VECTORS["invalid"]) >= 10
    assert VECTORS["unknown_event"]["body"]


@pytest.mark.parametrize("case", VECTORS["valid"], ids=ids(VECTORS["valid"]))
def test_valid_bodies_decrypt_exactly_and_parse(case: dict[str, Any]) -> None:
    secret = WebhookSecret(case["secret"])
    plaintext = decrypt(case["body"].encode("ascii"), secret)
    assert plaintext == case["plaintext"].encode("utf-8")
    event = parse_event(plaintext)
    assert isinstance(event, WebhookEvent)
    assert event.to_dict() == json.loads(case["plaintext"])
    # We write what Node's JSON.stringify writes (some vectors pad the JSON with spaces).
    compact = json.dumps(json.loads(plaintext), separators=(",", ":"), ensure_ascii=False)
    assert event.to_json() == compact.encode("utf-8")
    headers = {"content-type": "text/plain"}
    assert decode_request(headers, case["body"].encode(), DecodeOptions(secret=secret), 0) == event


@pytest.mark.parametrize("case", VECTORS["invalid"], ids=ids(VECTORS["invalid"]))
def test_invalid_bodies_are_refused_with_our_exception(case: dict[str, Any]) -> None:
    secret = WebhookSecret(case["secret"])
    with pytest.raises((DecryptionError, MalformedBody, InvalidEvent)) as caught:
        parse_event(decrypt(case["body"].encode("ascii"), secret))
    assert caught.value.status_code == 400
    message = str(caught.value)
    assert message
    assert "\n" not in message
    assert case["secret"] not in message
    options = DecodeOptions(secret=secret)
    with pytest.raises(WebhookRejected) as rejected:
        decode_request({"content-type": "text/plain"}, case["body"].encode(), options, 0)
    assert type(rejected.value) is type(caught.value)


def test_unknown_event_is_well_formed_and_kept() -> None:
    case = VECTORS["unknown_event"]
    plaintext = decrypt(case["body"], WebhookSecret(case["secret"]))
    assert plaintext == case["plaintext"].encode("utf-8")
    event = parse_event(plaintext)
    assert isinstance(event, UnknownEvent)
    assert event.event == json.loads(case["plaintext"])["event"]
    assert dict(event.payload) == json.loads(case["plaintext"])
