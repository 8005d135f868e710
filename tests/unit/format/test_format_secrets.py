from __future__ import annotations

import base64
import string

import pytest

from verihook.exceptions import InvalidSecret
from verihook.format import SigningSecret, WebhookSecret

ASCII_SECRET = "YOUR_WEBHOOK_SECRET_32_BYTES_KEY"
# 10 two-byte, 4 three-byte characters: 14 characters, 32 UTF-8 bytes.
MULTIBYTE_SECRET = "éééééééééé€€€€"


def test_ascii_secret() -> None:
    secret = WebhookSecret(ASCII_SECRET)
    assert secret.key == ASCII_SECRET.encode()
    assert secret.reveal() == ASCII_SECRET


def test_multibyte_secret_counts_utf8_bytes_not_characters() -> None:
    assert len(MULTIBYTE_SECRET) == 14
    secret = WebhookSecret(MULTIBYTE_SECRET)
    assert secret.key == MULTIBYTE_SECRET.encode("utf-8")
    assert WebhookSecret(MULTIBYTE_SECRET.encode("utf-8")) == secret


@pytest.mark.parametrize(
    ("value", "got"),
    [
        ("", 0),
        ("a" * 31, 31),
        ("a" * 33, 33),
        ("é" * 16 + "a", 33),  # 17 characters, 33 bytes
        ("é" * 32, 64),  # 32 characters, 64 bytes
        (b"a" * 16, 16),
    ],
)
def test_wrong_length_says_how_many_bytes(value: str | bytes, got: int) -> None:
    with pytest.raises(InvalidSecret, match=f"exactly 32 bytes of UTF-8, got {got}$"):
        WebhookSecret(value)


def test_non_utf8_bytes_are_refused() -> None:
    with pytest.raises(InvalidSecret, match="UTF-8"):
        WebhookSecret(b"\xff" * 32)


def test_lone_surrogate_is_refused() -> None:
    with pytest.raises(InvalidSecret, match="UTF-8"):
        WebhookSecret("\ud800" + "a" * 29)


def test_not_text_is_refused() -> None:
    with pytest.raises(InvalidSecret):
        WebhookSecret(12345)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "secret",
    [WebhookSecret(ASCII_SECRET), SigningSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")],
)
def test_repr_and_str_never_show_the_secret(secret: WebhookSecret | SigningSecret) -> None:
    for shown in (repr(secret), str(secret), f"{secret}", f"{[secret]}"):
        assert ASCII_SECRET not in shown
        assert "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" not in shown
        assert "********" in shown


def test_secrets_in_error_messages_never_show() -> None:
    wrong = "THIS-IS-A-SECRET-VALUE-31-BYTES"
    with pytest.raises(InvalidSecret) as caught:
        WebhookSecret(wrong)
    assert wrong not in str(caught.value)
    with pytest.raises(InvalidSecret) as caught_signing:
        SigningSecret("whsec_" + wrong)
    assert wrong not in str(caught_signing.value)


def test_generate_alphabet_and_length() -> None:
    made = {WebhookSecret.generate().reveal() for _ in range(200)}
    assert len(made) == 200
    alphabet = set(string.ascii_letters + string.digits)
    for value in made:
        assert len(value) == 32
        assert set(value) <= alphabet
    # 6,400 characters from 62 symbols: every symbol appears (a miss is ~1e-40 likely).
    assert set("".join(made)) == alphabet


def test_equality_and_hash() -> None:
    assert WebhookSecret(ASCII_SECRET) == WebhookSecret(ASCII_SECRET)
    assert hash(WebhookSecret(ASCII_SECRET)) == hash(WebhookSecret(ASCII_SECRET))
    assert WebhookSecret(ASCII_SECRET) != WebhookSecret("b" * 32)
    assert WebhookSecret(ASCII_SECRET) != ASCII_SECRET


def test_signing_secret_round_trip() -> None:
    made = SigningSecret.generate()
    value = made.reveal()
    assert value.startswith("whsec_")
    assert len(base64.b64decode(value[6:])) == 32
    assert SigningSecret(value) == made
    assert made != SigningSecret.generate()


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "start with 'whsec_'"),
        ("whsec_", "24 to 64 bytes"),
        ("whsec_not base64!", "base64"),
        ("whsec_" + base64.b64encode(b"x" * 23).decode(), "24 to 64 bytes"),
        ("whsec_" + base64.b64encode(b"x" * 65).decode(), "24 to 64 bytes"),
    ],
)
def test_bad_signing_secrets(value: str, reason: str) -> None:
    with pytest.raises(InvalidSecret, match=reason):
        SigningSecret(value)
