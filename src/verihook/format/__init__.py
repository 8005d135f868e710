"""The Passbase webhook format, with no I/O: events, encryption, signatures, whole requests."""

from __future__ import annotations

from verihook.format.codec import (
    JSON_CONTENT_TYPE,
    MAX_BODY_SIZE,
    TEXT_CONTENT_TYPE,
    USER_AGENT,
    DecodeOptions,
    decode_request,
    encode_request,
)
from verihook.format.envelope import decrypt, encrypt
from verihook.format.events import (
    EventType,
    Status,
    UnknownEvent,
    WebhookEvent,
    parse_event,
    parse_event_object,
)
from verihook.format.secrets import SigningSecret, WebhookSecret
from verihook.format.signature import DEFAULT_TOLERANCE, sign, verify

__all__ = [
    "DEFAULT_TOLERANCE",
    "JSON_CONTENT_TYPE",
    "MAX_BODY_SIZE",
    "TEXT_CONTENT_TYPE",
    "USER_AGENT",
    "DecodeOptions",
    "EventType",
    "SigningSecret",
    "Status",
    "UnknownEvent",
    "WebhookEvent",
    "WebhookSecret",
    "decode_request",
    "decrypt",
    "encode_request",
    "encrypt",
    "parse_event",
    "parse_event_object",
    "sign",
    "verify",
]
