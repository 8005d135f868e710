from __future__ import annotations

import pytest

from verihook.delivery.address_policy import AddressPolicy
from verihook.exceptions import InvalidInput, InvalidSecret
from verihook.format import EventType, WebhookSecret
from verihook.provider.endpoints import (
    ALL_EVENT_TYPES,
    Endpoint,
    new_endpoint,
    parse_event_filter,
    rotate_secrets,
)

STRICT = AddressPolicy()
T0 = 1_700_000_000.0
SECRET = "YOUR_WEBHOOK_SECRET_32_BYTES_KEY"


def endpoint(**kwargs: object) -> Endpoint:
    return new_endpoint("https://hooks.example.com/in", policy=STRICT, now=T0, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (None, ALL_EVENT_TYPES),
        ("VERIFICATION_REVIEWED", (EventType.VERIFICATION_REVIEWED,)),
        (" verification_completed , ", (EventType.VERIFICATION_COMPLETED,)),
        (["VERIFICATION_REVIEWED", "VERIFICATION_COMPLETED"], ALL_EVENT_TYPES),
        ([EventType.VERIFICATION_COMPLETED], (EventType.VERIFICATION_COMPLETED,)),
    ],
)
def test_event_filter(given: object, expected: tuple[EventType, ...]) -> None:
    assert parse_event_filter(given) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize("given", ["", ",", [], "VERIFICATION_STARTED", "COMPLETED,REVIEWED"])
def test_event_filter_refuses(given: object) -> None:
    with pytest.raises(InvalidInput):
        parse_event_filter(given)  # type: ignore[arg-type]


def test_a_new_endpoint_gets_generated_secrets() -> None:
    e = endpoint()
    assert e.encryption_secret is not None and len(e.encryption_secret.reveal()) == 32
    assert e.signing_secret.reveal().startswith("whsec_")
    assert e.id.startswith("ep_") and e.enabled and e.event_types == ALL_EVENT_TYPES
    assert endpoint(secret=SECRET).encryption_secret == WebhookSecret(SECRET)
    assert endpoint(encryption=False).encryption_secret is None
    assert endpoint().signing_secret != e.signing_secret


def test_secrets_are_masked_unless_revealed() -> None:
    e = endpoint(secret=SECRET)
    masked = e.to_dict()
    assert (masked["encryption_secret"], masked["signing_secret"]) == ("********", "********")
    assert SECRET not in repr(e) and e.signing_secret.reveal() not in repr(e)
    assert e.to_dict(reveal=True)["encryption_secret"] == SECRET


@pytest.mark.parametrize(
    ("url", "kwargs", "error"),
    [
        ("http://hooks.example.com/", {}, InvalidInput),
        ("https://127.0.0.1/", {}, InvalidInput),
        ("https://user:pw@hooks.example.com/", {}, InvalidInput),
        ("https://hooks.example.com/", {"secret": "short"}, InvalidSecret),
        ("https://hooks.example.com/", {"secret": SECRET, "encryption": False}, InvalidInput),
        ("https://hooks.example.com/", {"max_in_flight": 0}, InvalidInput),
        ("https://hooks.example.com/", {"rate_limit": 0}, InvalidInput),
        ("https://hooks.example.com/", {"retry_schedule": []}, InvalidInput),
        ("https://hooks.example.com/", {"retry_schedule": [float("nan")]}, InvalidInput),
        ("https://hooks.example.com/", {"retry_schedule": [8 * 86400]}, InvalidInput),
    ],
)
def test_refused_endpoints(url: str, kwargs: dict[str, object], error: type[Exception]) -> None:
    with pytest.raises(error):
        new_endpoint(url, policy=STRICT, now=T0, **kwargs)  # type: ignore[arg-type]


def test_private_addresses_when_allowed() -> None:
    e = new_endpoint("http://127.0.0.1:8000/", policy=AddressPolicy(allow_private=True), now=T0)
    assert e.url == "http://127.0.0.1:8000/"


def test_rotation_overlap() -> None:
    e = endpoint()
    r = rotate_secrets(e, now=T0 + 10, overlap=3600)
    assert r.previous_signing_secret == e.signing_secret
    assert r.signing_secrets(T0 + 10) == [r.signing_secret, e.signing_secret]
    assert r.signing_secrets(T0 + 3609.9) == [r.signing_secret, e.signing_secret]
    assert r.signing_secrets(T0 + 3610) == [r.signing_secret]
    assert r.encryption_secret == e.encryption_secret
    assert r.updated_at == T0 + 10
    assert rotate_secrets(e, now=T0, overlap=0).signing_secrets(T0) != [e.signing_secret]
    assert rotate_secrets(e, now=T0, overlap=0).previous_signing_secret is None
    with_new_key = rotate_secrets(e, now=T0, rotate_encryption=True, encryption_secret=SECRET)
    assert with_new_key.encryption_secret == WebhookSecret(SECRET)
    with pytest.raises(InvalidInput):
        rotate_secrets(e, now=T0, overlap=31 * 86400)
    with pytest.raises(InvalidInput):
        rotate_secrets(e, now=T0, encryption_secret=SECRET)
