from __future__ import annotations

import base64
import threading
from typing import Any

import pytest
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given
from hypothesis import strategies as st

from verihook.exceptions import DecryptionError, InvalidEvent, MalformedBody
from verihook.format import (
    EventType,
    Status,
    UnknownEvent,
    WebhookEvent,
    WebhookSecret,
    decrypt,
    encrypt,
    parse_event,
)
from verihook.format.events import _FIELDS

IV = bytes(range(16))


def reference_decrypt(body: bytes, key: bytes) -> bytes:
    """The guide's steps, with cryptography's own CBC and PKCS7: an independent oracle."""
    raw = base64.b64decode(body)
    decryptor = Cipher(algorithms.AES(key), modes.CBC(raw[:16])).decryptor()
    padded = decryptor.update(raw[16:]) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    return unpadder.update(padded) + unpadder.finalize()


def reference_encrypt(plaintext: bytes, key: bytes, iv: bytes) -> bytes:
    padder = padding.PKCS7(128).padder()
    padded = padder.update(plaintext) + padder.finalize()
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return base64.b64encode(iv + encryptor.update(padded) + encryptor.finalize())


# --- strategies -------------------------------------------------------------------------

_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)
_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | _text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_text, children, max_size=4),
    max_leaves=10,
)
_extras = st.dictionaries(_text.filter(lambda name: name not in _FIELDS), _json_values, max_size=5)
_timestamps = st.integers(min_value=0, max_value=2**53 - 1)


@st.composite
def events(draw: st.DrawFn) -> WebhookEvent:
    event_type = draw(st.sampled_from(EventType))
    statuses = list(Status)
    if event_type is EventType.VERIFICATION_REVIEWED:
        statuses.remove(Status.PENDING)
    return WebhookEvent(
        event=event_type,
        key=str(draw(st.uuids())),
        status=draw(st.sampled_from(statuses)),
        created=draw(_timestamps),
        updated=draw(_timestamps),
        processed=draw(_timestamps),
        extra=draw(_extras),
    )


@st.composite
def multibyte_secrets(draw: st.DrawFn) -> str:
    """Any UTF-8 text, cut to at most 32 bytes and topped up with ASCII to exactly 32."""
    chars = draw(st.lists(st.characters(blacklist_categories=("Cs",), min_codepoint=0x80)))
    value = ""
    for char in chars:
        if len((value + char).encode("utf-8")) > 32:
            break
        value += char
    filler = draw(st.text(st.characters(max_codepoint=0x7F), min_size=32, max_size=32))
    return value + filler[: 32 - len(value.encode("utf-8"))]


secrets = st.text(st.characters(max_codepoint=0x7F), min_size=32, max_size=32) | multibyte_secrets()
ivs = st.binary(min_size=16, max_size=16)


# --- round trips ----------------------------------------------------------------------------


@given(event=events(), secret_text=secrets, iv=ivs)
def test_event_round_trip(event: WebhookEvent, secret_text: str, iv: bytes) -> None:
    secret = WebhookSecret(secret_text)
    body = encrypt(event, secret, iv)
    assert base64.b64decode(body)[:16] == iv
    plaintext = decrypt(body, secret)
    assert plaintext == event.to_json()
    assert parse_event(plaintext) == event


@given(plaintext=st.binary(max_size=200), secret_text=secrets, iv=ivs)
def test_bytes_match_an_independent_cbc(plaintext: bytes, secret_text: str, iv: bytes) -> None:
    secret = WebhookSecret(secret_text)
    body = encrypt(plaintext, secret, iv)
    assert body == reference_encrypt(plaintext, secret.key, iv)
    assert reference_decrypt(body, secret.key) == plaintext
    assert decrypt(body, secret) == plaintext


@given(secret_text=secrets)
def test_multibyte_secrets_are_32_bytes(secret_text: str) -> None:
    assert len(WebhookSecret(secret_text).key) == 32


@given(garbage=st.binary(max_size=300) | st.text(max_size=300), secret_text=secrets)
def test_garbage_only_raises_our_exceptions(garbage: bytes | str, secret_text: str) -> None:
    secret = WebhookSecret(secret_text)
    try:
        parse_event(decrypt(garbage, secret))
    except (MalformedBody, InvalidEvent):
        pass


@given(
    raw=st.binary(min_size=32, max_size=200).filter(lambda r: len(r) % 16 == 0),
    secret_text=secrets,
)
def test_well_shaped_garbage_only_raises_our_exceptions(raw: bytes, secret_text: str) -> None:
    # Right length and valid base64: the cipher runs and the padding decides.
    secret = WebhookSecret(secret_text)
    try:
        result: Any = parse_event(decrypt(base64.b64encode(raw), secret))
    except (MalformedBody, InvalidEvent):
        return
    assert isinstance(result, WebhookEvent | UnknownEvent)


# --- specifics ------------------------------------------------------------------------------


def test_encrypt_is_random_without_an_iv(event: WebhookEvent, secret: WebhookSecret) -> None:
    first, second = encrypt(event, secret), encrypt(event, secret)
    assert first != second
    assert decrypt(first, secret) == decrypt(second, secret) == event.to_json()


def test_body_is_ascii_base64_without_newline(event: WebhookEvent, secret: WebhookSecret) -> None:
    body = encrypt(event, secret, IV)
    assert body.isascii()
    assert b"\n" not in body
    assert base64.b64encode(base64.b64decode(body)) == body


def test_iv_must_be_16_bytes(event: WebhookEvent, secret: WebhookSecret) -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        encrypt(event, secret, b"short")


@pytest.mark.parametrize("wrap", [b" %s ", b"\n%s\n", b"\r\n%s\r\n", b"\t%s"])
def test_surrounding_whitespace_is_tolerated(
    event: WebhookEvent, secret: WebhookSecret, wrap: bytes
) -> None:
    body = encrypt(event, secret, IV)
    assert decrypt(wrap % body, secret) == event.to_json()


def test_str_body_is_accepted(event: WebhookEvent, secret: WebhookSecret) -> None:
    assert decrypt(encrypt(event, secret, IV).decode(), secret) == event.to_json()


def test_whole_block_plaintext_gets_a_whole_block_of_padding(secret: WebhookSecret) -> None:
    body = encrypt(b"x" * 32, secret, IV)
    assert len(base64.b64decode(body)) == 16 + 48
    assert decrypt(body, secret) == b"x" * 32


def test_empty_plaintext(secret: WebhookSecret) -> None:
    assert decrypt(encrypt(b"", secret, IV), secret) == b""


def _body_with_padding(secret: WebhookSecret, padded: bytes) -> bytes:
    encryptor = Cipher(algorithms.AES(secret.key), modes.CBC(IV)).encryptor()
    return base64.b64encode(IV + encryptor.update(padded) + encryptor.finalize())


@pytest.mark.parametrize(
    "padded",
    [
        b"a" * 16,  # last byte 'a' = 97: not a pad length
        b"a" * 15 + b"\x00",  # zero is not a pad length
        b"a" * 15 + b"\x11",  # 17 > block size
        b"a" * 14 + b"\x01\x02",  # claims 2 bytes, second-last is 1
        b"a" * 12 + b"\x03\x04\x04\x04",  # claims 4, one byte differs
        b"a" * 16 + b"\x10" * 15 + b"\x0f",
    ],
)
def test_strict_pkcs7(secret: WebhookSecret, padded: bytes) -> None:
    with pytest.raises(DecryptionError):
        decrypt(_body_with_padding(secret, padded), secret)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"   ",
        b"%%%not base64!!!",
        base64.b64encode(b"x" * 16),  # IV only
        base64.b64encode(b"x" * 31),  # not whole blocks
        base64.b64encode(b"x" * 40),
        base64.b64encode(b"x" * 48)[:-2],  # bad base64 padding
        base64.b64encode(b"x" * 48).replace(b"A", b"-"),
        b"YWJj ZGVm" + base64.b64encode(b"x" * 48),  # whitespace inside
        "é" * 64,  # not ASCII
    ],
)
def test_bad_bodies_get_the_uniform_error(body: bytes | str, secret: WebhookSecret) -> None:
    with pytest.raises(DecryptionError) as caught:
        decrypt(body, secret)
    assert str(caught.value) == "body could not be decrypted or parsed"
    assert caught.value.status_code == 400
    # No chained exception to tell the failing step apart.
    assert caught.value.__cause__ is None
    assert caught.value.__context__ is None or caught.value.__suppress_context__


def test_wrong_secret_fails_or_gives_other_bytes(event: WebhookEvent) -> None:
    body = encrypt(event, WebhookSecret("a" * 32), IV)
    try:
        plaintext = decrypt(body, WebhookSecret("b" * 32))
    except DecryptionError:
        return
    assert plaintext != event.to_json()


def test_cached_contexts_carry_nothing_from_one_body_to_the_next() -> None:
    # More keys than the cache holds, interleaved, each with bodies under several IVs.
    keys = [WebhookSecret(f"{n:032d}") for n in range(70)]
    bodies = [(k, p, encrypt(p, k)) for k in keys for p in (b"one", b"two" * 9)]
    for _ in range(2):
        for key, plaintext, body in bodies:
            assert decrypt(body, key) == plaintext
            # A tampered last block between two good bodies (refused, or rarely other bytes).
            try:
                assert decrypt(body[:-8] + b"AAAAAAA=", key) != plaintext
            except DecryptionError:
                pass


def test_cached_context_is_safe_across_threads(secret: WebhookSecret) -> None:
    plaintexts = [f'{{"n":{n}}}'.encode() * (n % 7 + 1) for n in range(64)]
    bodies = [encrypt(p, secret) for p in plaintexts]
    failures: list[int] = []

    def work() -> None:
        for _ in range(50):
            for index, body in enumerate(bodies):
                if decrypt(body, secret) != plaintexts[index]:
                    failures.append(index)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
