"""Whole requests: an event to (headers, body), and (headers, body) back to an event.

Checks run in a fixed order, cheapest and least revealing first: size, content type,
signature (before any decryption: encrypt-then-MAC), decryption, JSON, schema.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from verihook._version import __version__
from verihook.exceptions import PayloadTooLarge, UnsupportedContentType
from verihook.format.envelope import decrypt, encrypt
from verihook.format.events import UnknownEvent, WebhookEvent, parse_event
from verihook.format.secrets import SigningSecret, WebhookSecret
from verihook.format.signature import DEFAULT_TOLERANCE, sign, verify

__all__ = [
    "JSON_CONTENT_TYPE",
    "MAX_BODY_SIZE",
    "TEXT_CONTENT_TYPE",
    "USER_AGENT",
    "DecodeOptions",
    "decode_request",
    "encode_request",
]

JSON_CONTENT_TYPE = "application/json"
# Exactly this, no charset: Passbase's example server compares the header to the string.
TEXT_CONTENT_TYPE = "text/plain"
MAX_BODY_SIZE = 64 * 1024
USER_AGENT = f"verihook/{__version__}"


@dataclass(frozen=True, slots=True)
class DecodeOptions:
    """What a receiving endpoint accepts.

    ``allow_unencrypted`` defaults to True without a secret and False with one, so a
    configured secret can never be bypassed by sending plain JSON (no downgrade).
    """

    secret: WebhookSecret | None = None
    signing_secrets: Sequence[SigningSecret] = ()
    allow_unencrypted: bool | None = None
    max_body_size: int = MAX_BODY_SIZE
    tolerance: int = DEFAULT_TOLERANCE

    @property
    def accepts_plain_json(self) -> bool:
        if self.allow_unencrypted is None:
            return self.secret is None
        return self.allow_unencrypted


def encode_request(
    event: WebhookEvent | UnknownEvent | bytes,
    *,
    secret: WebhookSecret | None = None,
    signing_secrets: Sequence[SigningSecret] = (),
    msg_id: str | None = None,
    timestamp: int | None = None,
    attempt: int | None = None,
) -> tuple[dict[str, str], bytes]:
    """The headers and body of one POST. Signing needs ``msg_id`` and ``timestamp``."""
    plaintext = event if isinstance(event, bytes) else event.to_json()
    if secret is not None:
        body = encrypt(plaintext, secret)
        headers = {"content-type": TEXT_CONTENT_TYPE}
    else:
        body = plaintext
        headers = {"content-type": JSON_CONTENT_TYPE}
    headers["user-agent"] = USER_AGENT
    if msg_id is not None:
        headers["webhook-id"] = msg_id
    if timestamp is not None:
        headers["webhook-timestamp"] = str(timestamp)
    if signing_secrets:
        if msg_id is None or timestamp is None:
            raise ValueError("signing needs msg_id and timestamp")
        headers["webhook-signature"] = sign(msg_id, timestamp, body, signing_secrets)
    if attempt is not None:
        headers["webhook-attempt"] = str(attempt)
    return headers, body


def decode_request(
    headers: Mapping[str, str],
    body: bytes,
    options: DecodeOptions,
    now: float,
) -> WebhookEvent | UnknownEvent:
    """Turn a received request into an event, or raise the WebhookRejected subclass at fault.

    Header names are matched case-insensitively; ``now`` is unix seconds.
    """
    if len(body) > options.max_body_size:
        raise PayloadTooLarge(f"body is over {options.max_body_size} bytes")
    lowered = _lowercase(headers)
    media_type = lowered.get("content-type", "").partition(";")[0].strip().lower()
    if media_type == TEXT_CONTENT_TYPE:
        if options.secret is None:
            raise UnsupportedContentType("encrypted body, but no webhook secret is configured")
    elif media_type == JSON_CONTENT_TYPE:
        if not options.accepts_plain_json:
            raise UnsupportedContentType("plain JSON refused: this endpoint expects encryption")
    else:
        raise UnsupportedContentType("content type must be text/plain or application/json")
    if options.signing_secrets:
        verify(
            lowered.get("webhook-id"),
            lowered.get("webhook-timestamp"),
            lowered.get("webhook-signature"),
            body,
            options.signing_secrets,
            now,
            options.tolerance,
        )
    if media_type == TEXT_CONTENT_TYPE:
        assert options.secret is not None
        return parse_event(decrypt(body, options.secret))
    return parse_event(body)


def _lowercase(headers: Mapping[str, str]) -> Mapping[str, str]:
    # ASGI servers already hand over lower-case names; only rebuild when one is not.
    # str.islower in C (False for a name with no letter: that only costs a rebuild).
    if all(map(str.islower, headers)):
        return headers
    return {name.lower(): value for name, value in headers.items()}
