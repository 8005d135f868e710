from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from verihook import __version__
from verihook.exceptions import (
    DecryptionError,
    InvalidEvent,
    MalformedBody,
    PayloadTooLarge,
    SignatureError,
    UnsupportedContentType,
    WebhookRejected,
)
from verihook.format import (
    MAX_BODY_SIZE,
    DecodeOptions,
    SigningSecret,
    UnknownEvent,
    WebhookEvent,
    WebhookSecret,
    decode_request,
    decrypt,
    encode_request,
    encrypt,
    sign,
    verify,
)

NOW = 1_700_000_000
MSG_ID = "msg_2c7d1f0e"


def signed(body: bytes, signing: SigningSecret, content_type: str) -> dict[str, str]:
    return {
        "content-type": content_type,
        "webhook-id": MSG_ID,
        "webhook-timestamp": str(NOW),
        "webhook-signature": sign(MSG_ID, NOW, body, signing),
    }


# --- encode_request -------------------------------------------------------------------------


def test_encode_plain_json(event: WebhookEvent) -> None:
    headers, body = encode_request(event)
    assert headers == {"content-type": "application/json", "user-agent": f"verihook/{__version__}"}
    assert body == event.to_json()


def test_encode_encrypted_signed_with_attempt(
    event: WebhookEvent, secret: WebhookSecret, signing_secret: SigningSecret
) -> None:
    headers, body = encode_request(
        event,
        secret=secret,
        signing_secrets=[signing_secret],
        msg_id=MSG_ID,
        timestamp=NOW,
        attempt=3,
    )
    assert headers == {
        # Exactly this: Passbase's example server compares the whole header to the string.
        "content-type": "text/plain",
        "user-agent": f"verihook/{__version__}",
        "webhook-id": MSG_ID,
        "webhook-timestamp": str(NOW),
        "webhook-signature": sign(MSG_ID, NOW, body, signing_secret),
        "webhook-attempt": "3",
    }
    # Encrypt-then-MAC: the signature covers the ciphertext as sent.
    verify(MSG_ID, str(NOW), headers["webhook-signature"], body, [signing_secret], NOW)
    assert decrypt(body, secret) == event.to_json()


def test_encode_raw_bytes_and_unknown_events(secret: WebhookSecret) -> None:
    assert encode_request(b'{"a":1}')[1] == b'{"a":1}'
    unknown = UnknownEvent(event="OTHER", payload={"event": "OTHER", "x": "é"})
    headers, body = encode_request(unknown, secret=secret)
    assert orjson.loads(decrypt(body, secret)) == {"event": "OTHER", "x": "é"}
    assert headers["content-type"] == "text/plain"


def test_signing_needs_an_id_and_a_timestamp(
    event: WebhookEvent, signing_secret: SigningSecret
) -> None:
    with pytest.raises(ValueError, match="msg_id and timestamp"):
        encode_request(event, signing_secrets=[signing_secret], timestamp=NOW)
    with pytest.raises(ValueError, match="msg_id and timestamp"):
        encode_request(event, signing_secrets=[signing_secret], msg_id=MSG_ID)


@pytest.mark.parametrize("encrypted", [False, True])
@pytest.mark.parametrize("signing", [False, True])
def test_round_trip(
    event: WebhookEvent,
    secret: WebhookSecret,
    signing_secret: SigningSecret,
    encrypted: bool,
    signing: bool,
) -> None:
    webhook_secret = secret if encrypted else None
    signing_secrets = (signing_secret,) if signing else ()
    headers, body = encode_request(
        event,
        secret=webhook_secret,
        signing_secrets=signing_secrets,
        msg_id=MSG_ID,
        timestamp=NOW,
    )
    options = DecodeOptions(secret=webhook_secret, signing_secrets=signing_secrets)
    assert decode_request(headers, body, options, NOW + 30) == event


# --- decode_request: each check and its status ----------------------------------------------


def test_content_type_parameters_and_header_case(
    event: WebhookEvent, secret: WebhookSecret
) -> None:
    body = encrypt(event, secret)
    options = DecodeOptions(secret=secret)
    for value in ("text/plain", "text/plain; charset=utf-8", "TEXT/Plain ;charset=UTF-8"):
        assert decode_request({"Content-Type": value}, body, options, NOW) == event
    plain = DecodeOptions()
    for value in ("application/json", "application/json; charset=utf-8", "Application/JSON"):
        assert decode_request({"CONTENT-TYPE": value}, event.to_json(), plain, NOW) == event


@pytest.mark.parametrize(
    "content_type", [None, "", "text/html", "application/x-www-form-urlencoded", "text/plainx"]
)
def test_other_content_types_are_415(content_type: str | None, event: WebhookEvent) -> None:
    headers = {} if content_type is None else {"content-type": content_type}
    with pytest.raises(UnsupportedContentType) as caught:
        decode_request(headers, event.to_json(), DecodeOptions(), NOW)
    assert caught.value.status_code == 415


def test_plain_json_is_refused_when_a_secret_is_set(
    event: WebhookEvent, secret: WebhookSecret
) -> None:
    # No downgrade: an attacker cannot skip the encryption by sending JSON.
    with pytest.raises(UnsupportedContentType, match="expects encryption") as caught:
        decode_request(
            {"content-type": "application/json"}, event.to_json(), DecodeOptions(secret), NOW
        )
    assert caught.value.status_code == 415
    allowed = DecodeOptions(secret=secret, allow_unencrypted=True)
    assert decode_request({"content-type": "application/json"}, event.to_json(), allowed, NOW)


def test_plain_json_can_be_refused_without_a_secret(event: WebhookEvent) -> None:
    with pytest.raises(UnsupportedContentType):
        decode_request(
            {"content-type": "application/json"},
            event.to_json(),
            DecodeOptions(allow_unencrypted=False),
            NOW,
        )


def test_encrypted_body_without_a_secret_is_415(event: WebhookEvent, secret: WebhookSecret) -> None:
    with pytest.raises(UnsupportedContentType, match="no webhook secret"):
        decode_request({"content-type": "text/plain"}, encrypt(event, secret), DecodeOptions(), NOW)


def test_over_64_kib_is_413() -> None:
    assert MAX_BODY_SIZE == 64 * 1024
    with pytest.raises(PayloadTooLarge) as caught:
        decode_request(
            {"content-type": "application/json"}, b" " * (MAX_BODY_SIZE + 1), DecodeOptions(), NOW
        )
    assert caught.value.status_code == 413


def test_exactly_64_kib_is_not_too_large(event: WebhookEvent) -> None:
    body = event.to_json()
    body += b" " * (MAX_BODY_SIZE - len(body))
    assert len(body) == MAX_BODY_SIZE
    assert decode_request({"content-type": "application/json"}, body, DecodeOptions(), NOW) == event


def test_configured_size_limit(event: WebhookEvent) -> None:
    with pytest.raises(PayloadTooLarge):
        decode_request(
            {"content-type": "application/json"},
            event.to_json(),
            DecodeOptions(max_body_size=10),
            NOW,
        )


@pytest.mark.parametrize(
    ("plaintext", "error"),
    [
        (b"not json", MalformedBody),
        (b"\xff\xfe", MalformedBody),
        (b"[1, 2]", InvalidEvent),
        (b'{"event": "VERIFICATION_COMPLETED"}', InvalidEvent),
    ],
)
def test_json_and_schema_failures_are_400(
    plaintext: bytes, error: type[WebhookRejected], secret: WebhookSecret
) -> None:
    for headers, body, options in (
        ({"content-type": "text/plain"}, encrypt(plaintext, secret), DecodeOptions(secret)),
        ({"content-type": "application/json"}, plaintext, DecodeOptions()),
    ):
        with pytest.raises(error) as caught:
            decode_request(headers, body, options, NOW)
        assert type(caught.value) is error
        assert caught.value.status_code == 400


def test_decryption_failure_is_400_with_the_uniform_message(secret: WebhookSecret) -> None:
    with pytest.raises(DecryptionError) as caught:
        decode_request({"content-type": "text/plain"}, b"garbage!", DecodeOptions(secret), NOW)
    assert caught.value.status_code == 400
    assert str(caught.value) == str(MalformedBody())


def test_unknown_event_passes_through(secret: WebhookSecret) -> None:
    body = encrypt(b'{"event":"IDENTITY_DELETED","key":"x"}', secret)
    decoded = decode_request({"content-type": "text/plain"}, body, DecodeOptions(secret), NOW)
    assert isinstance(decoded, UnknownEvent)
    assert decoded.event == "IDENTITY_DELETED"


# --- decode_request: the order of the checks --------------------------------------------------


def test_size_before_content_type() -> None:
    with pytest.raises(PayloadTooLarge):
        decode_request(
            {"content-type": "image/png"}, b"x" * (MAX_BODY_SIZE + 1), DecodeOptions(), 0
        )


def test_content_type_before_signature(signing_secret: SigningSecret) -> None:
    options = DecodeOptions(signing_secrets=[signing_secret])
    with pytest.raises(UnsupportedContentType):
        decode_request({"content-type": "image/png"}, b"{}", options, NOW)


def test_signature_before_decryption(secret: WebhookSecret, signing_secret: SigningSecret) -> None:
    options = DecodeOptions(secret=secret, signing_secrets=[signing_secret])
    garbage = b"not a ciphertext"
    # Unsigned garbage: the signature check answers, the cipher never runs.
    with pytest.raises(SignatureError):
        decode_request({"content-type": "text/plain"}, garbage, options, NOW)
    # The same garbage, signed: now the decryption is what fails.
    with pytest.raises(DecryptionError):
        decode_request(signed(garbage, signing_secret, "text/plain"), garbage, options, NOW)


def test_signature_before_json(signing_secret: SigningSecret) -> None:
    options = DecodeOptions(signing_secrets=[signing_secret])
    with pytest.raises(SignatureError):
        decode_request({"content-type": "application/json"}, b"[", options, NOW)
    with pytest.raises(MalformedBody):
        decode_request(signed(b"[", signing_secret, "application/json"), b"[", options, NOW)


def test_decryption_before_json_before_schema(secret: WebhookSecret) -> None:
    options = DecodeOptions(secret)
    headers = {"content-type": "text/plain"}
    with pytest.raises(DecryptionError):
        decode_request(headers, encrypt(b"[", secret)[:-4], options, NOW)
    with pytest.raises(MalformedBody) as caught:
        decode_request(headers, encrypt(b"[", secret), options, NOW)
    assert type(caught.value) is MalformedBody
    with pytest.raises(InvalidEvent):
        decode_request(headers, encrypt(b"[]", secret), options, NOW)


def test_signature_is_over_the_ciphertext(
    event: WebhookEvent, secret: WebhookSecret, signing_secret: SigningSecret
) -> None:
    options = DecodeOptions(secret=secret, signing_secrets=[signing_secret])
    body = encrypt(event, secret)
    headers = signed(event.to_json(), signing_secret, "text/plain")  # signed the plaintext
    with pytest.raises(SignatureError, match="no signature matches"):
        decode_request(headers, body, options, NOW)


def test_stale_signature_is_401(event: WebhookEvent, signing_secret: SigningSecret) -> None:
    body = event.to_json()
    options = DecodeOptions(signing_secrets=[signing_secret])
    headers = signed(body, signing_secret, "application/json")
    assert decode_request(headers, body, options, NOW + 300) == event
    with pytest.raises(SignatureError) as caught:
        decode_request(headers, body, options, NOW + 301)
    assert caught.value.status_code == 401


@given(
    body=st.binary(max_size=400),
    content_type=st.sampled_from(["text/plain", "application/json", "text/plain; charset=utf-8"]),
)
def test_garbage_requests_only_raise_our_rejections(body: bytes, content_type: str) -> None:
    options = DecodeOptions(
        secret=WebhookSecret("YOUR_WEBHOOK_SECRET_32_BYTES_KEY"), allow_unencrypted=True
    )
    try:
        result = decode_request({"content-type": content_type}, body, options, NOW)
    except WebhookRejected as exc:
        assert exc.status_code == 400
    else:
        assert isinstance(result, WebhookEvent | UnknownEvent)
