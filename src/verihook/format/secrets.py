"""The two kinds of secret: Passbase's 32-byte encryption secret and a whsec_ signing secret."""

from __future__ import annotations

import base64
import binascii
import secrets
import string

from verihook.exceptions import InvalidSecret

__all__ = ["SigningSecret", "WebhookSecret"]

_ALPHABET = string.ascii_letters + string.digits
_SIGNING_PREFIX = "whsec_"


class WebhookSecret:
    """An AES-256 key given as text whose UTF-8 encoding is exactly 32 bytes, as Passbase has it.

    The value never shows in ``repr`` or ``str``, so it cannot leak through a log line.
    """

    __slots__ = ("_key",)
    SIZE = 32

    def __init__(self, value: str | bytes) -> None:
        if isinstance(value, bytes):
            try:
                value.decode("utf-8")
            except UnicodeDecodeError:
                raise InvalidSecret("webhook secret must be valid UTF-8 text") from None
            key = value
        elif isinstance(value, str):
            try:
                key = value.encode("utf-8")
            except UnicodeEncodeError:
                raise InvalidSecret("webhook secret must be valid UTF-8 text") from None
        else:
            raise InvalidSecret("webhook secret must be text")
        if len(key) != self.SIZE:
            raise InvalidSecret(f"webhook secret must be exactly 32 bytes of UTF-8, got {len(key)}")
        self._key = key

    @classmethod
    def generate(cls) -> WebhookSecret:
        """32 characters of [A-Za-z0-9] from the OS's CSPRNG."""
        return cls("".join(secrets.choice(_ALPHABET) for _ in range(cls.SIZE)))

    @property
    def key(self) -> bytes:
        return self._key

    def reveal(self) -> str:
        """The secret as text, for the one place that must show it (creation)."""
        return self._key.decode("utf-8")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, WebhookSecret) and secrets.compare_digest(self._key, other._key)

    def __hash__(self) -> int:
        return hash(self._key)

    def __repr__(self) -> str:
        return "WebhookSecret('********')"

    __str__ = __repr__


class SigningSecret:
    """A Standard Webhooks secret: ``whsec_`` followed by base64 of 24 to 64 random bytes."""

    __slots__ = ("_key",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str) or not value.startswith(_SIGNING_PREFIX):
            raise InvalidSecret("signing secret must start with 'whsec_'")
        try:
            key = base64.b64decode(value[len(_SIGNING_PREFIX) :], validate=True)
        except (binascii.Error, ValueError):
            raise InvalidSecret("signing secret must be 'whsec_' followed by base64") from None
        if not 24 <= len(key) <= 64:
            raise InvalidSecret("signing secret must hold 24 to 64 bytes")
        self._key = key

    @classmethod
    def generate(cls) -> SigningSecret:
        return cls(_SIGNING_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii"))

    @property
    def key(self) -> bytes:
        return self._key

    def reveal(self) -> str:
        return _SIGNING_PREFIX + base64.b64encode(self._key).decode("ascii")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SigningSecret) and secrets.compare_digest(self._key, other._key)

    def __hash__(self) -> int:
        return hash(self._key)

    def __repr__(self) -> str:
        return "SigningSecret('whsec_********')"

    __str__ = __repr__
