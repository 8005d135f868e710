"""Every error verihook raises on purpose.

    VerihookError
    ├── InvalidSecret                  a webhook or signing secret of the wrong shape
    ├── InvalidInput                   a refused argument (URL, score, event filter, ...)
    │   ├── NotFound                   no such verification, endpoint or delivery
    │   └── Conflict                   the action contradicts the current state
    ├── WebhookRejected                a received request refused; carries ``status_code``
    │   ├── PayloadTooLarge            413: over the size limit
    │   ├── UnsupportedContentType     415: wrong type, or plain JSON where a secret is set
    │   ├── SignatureError             401: signature missing, malformed, stale or wrong
    │   ├── MalformedBody              400: one uniform message, so no step can be told apart
    │   │   └── DecryptionError        400: base64, cipher or padding failure
    │   └── InvalidEvent               400: JSON object that is not a valid event
    └── StoreUnavailable               the database cannot be reached or written (HTTP 503)

Messages are short, name the field at fault, and never contain a secret or the body.
"""

from __future__ import annotations

__all__ = [
    "Conflict",
    "DecryptionError",
    "InvalidEvent",
    "InvalidInput",
    "InvalidSecret",
    "MalformedBody",
    "NotFound",
    "PayloadTooLarge",
    "SignatureError",
    "StoreUnavailable",
    "UnsupportedContentType",
    "VerihookError",
    "WebhookRejected",
]


class VerihookError(Exception):
    """Base of every error raised on purpose by verihook."""


class InvalidSecret(VerihookError, ValueError):
    """A webhook encryption secret or signing secret that cannot be used."""


class InvalidInput(VerihookError, ValueError):
    """An argument refused before anything was written."""


class NotFound(InvalidInput, LookupError):
    """The named verification, endpoint or delivery does not exist."""


class Conflict(InvalidInput):
    """The action contradicts the current state (e.g. reviewing a reviewed verification)."""


class WebhookRejected(VerihookError):
    """A received webhook request that is refused; ``status_code`` is the HTTP answer."""

    status_code = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class PayloadTooLarge(WebhookRejected):
    status_code = 413


class UnsupportedContentType(WebhookRejected):
    status_code = 415


class SignatureError(WebhookRejected):
    status_code = 401


# The one message for every failure between the raw body and a JSON object. Telling the
# steps apart (base64, cipher, padding, UTF-8, JSON) would hand out a padding oracle.
MALFORMED_BODY_MESSAGE = "body could not be decrypted or parsed"


class MalformedBody(WebhookRejected):
    status_code = 400

    def __init__(self, message: str = MALFORMED_BODY_MESSAGE) -> None:
        super().__init__(message)


class DecryptionError(MalformedBody):
    """Base64, cipher or padding failure; always the uniform message."""

    def __init__(self) -> None:
        super().__init__(MALFORMED_BODY_MESSAGE)


class InvalidEvent(WebhookRejected):
    """A JSON object that is not a valid event: the message names the field."""

    status_code = 400


class StoreUnavailable(VerihookError):
    """The store cannot be reached or written; the sender should retry (HTTP 503)."""

    status_code = 503
