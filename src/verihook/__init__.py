"""verihook: Passbase-compatible identity-verification webhooks, both ends."""

from __future__ import annotations

from verihook._version import __version__
from verihook.exceptions import (
    DecryptionError,
    InvalidEvent,
    InvalidInput,
    InvalidSecret,
    MalformedBody,
    PayloadTooLarge,
    SignatureError,
    StoreUnavailable,
    UnsupportedContentType,
    VerihookError,
    WebhookRejected,
)
from verihook.format import (
    DecodeOptions,
    EventType,
    SigningSecret,
    Status,
    UnknownEvent,
    WebhookEvent,
    WebhookSecret,
    decode_request,
    decrypt,
    encode_request,
    encrypt,
    parse_event,
    sign,
    verify,
)
from verihook.provider import Provider, SyncProvider
from verihook.receiver import Receiver

__all__ = [
    "DecodeOptions",
    "DecryptionError",
    "EventType",
    "InvalidEvent",
    "InvalidInput",
    "InvalidSecret",
    "MalformedBody",
    "PayloadTooLarge",
    "Provider",
    "Receiver",
    "SignatureError",
    "SigningSecret",
    "Status",
    "StoreUnavailable",
    "SyncProvider",
    "UnknownEvent",
    "UnsupportedContentType",
    "VerihookError",
    "WebhookEvent",
    "WebhookRejected",
    "WebhookSecret",
    "__version__",
    "decode_request",
    "decrypt",
    "encode_request",
    "encrypt",
    "parse_event",
    "sign",
    "verify",
]
