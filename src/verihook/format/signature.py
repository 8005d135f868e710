"""Standard Webhooks v1 signatures: base64 HMAC-SHA256 over ``id.timestamp.body``.

The clock is passed in (``now``, unix seconds), so this module never reads the time.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Iterable, Sequence

from verihook.exceptions import SignatureError
from verihook.format.secrets import SigningSecret

__all__ = ["DEFAULT_TOLERANCE", "sign", "verify"]

DEFAULT_TOLERANCE = 5 * 60
_MAX_SIGNATURES = 10


def sign(
    msg_id: str, timestamp: int, body: bytes, secrets: SigningSecret | Iterable[SigningSecret]
) -> str:
    """The ``webhook-signature`` header: one ``v1,<base64>`` per secret, space-separated."""
    if isinstance(secrets, SigningSecret):
        secrets = (secrets,)
    to_sign = _signed_content(msg_id, timestamp, body)
    return " ".join(
        "v1," + base64.b64encode(hmac.digest(s.key, to_sign, hashlib.sha256)).decode("ascii")
        for s in secrets
    )


def verify(
    msg_id: str | None,
    timestamp: str | None,
    signature_header: str | None,
    body: bytes,
    secrets: Sequence[SigningSecret],
    now: float,
    tolerance: int = DEFAULT_TOLERANCE,
) -> None:
    """Raise SignatureError unless one signature matches one secret within the tolerance."""
    if not msg_id or not timestamp or not signature_header:
        raise SignatureError("missing webhook-id, webhook-timestamp or webhook-signature header")
    if len(msg_id) > 256 or "." in msg_id:
        raise SignatureError("malformed webhook-id header")
    if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
        raise SignatureError("malformed webhook-timestamp header")
    sent_at = int(timestamp)
    # Both ways: a timestamp from the future is as suspect as a stale one.
    if abs(now - sent_at) > tolerance:
        raise SignatureError("webhook-timestamp is outside the allowed tolerance")
    candidates: list[bytes] = []
    for part in signature_header.split(" ")[:_MAX_SIGNATURES]:
        version, _, value = part.partition(",")
        if version != "v1" or not value:
            continue
        try:
            candidates.append(base64.b64decode(value, validate=True))
        except (binascii.Error, ValueError):
            continue
    if not candidates:
        raise SignatureError("no v1 signature in webhook-signature header")
    to_sign = _signed_content(msg_id, sent_at, body)
    matched = False
    for secret in secrets:
        expected = hmac.digest(secret.key, to_sign, hashlib.sha256)
        for candidate in candidates:
            # Compare everything, no early exit: the time taken says nothing about which matched.
            matched |= hmac.compare_digest(expected, candidate)
    if not matched:
        raise SignatureError("no signature matches")


def _signed_content(msg_id: str, timestamp: int, body: bytes) -> bytes:
    return b"%s.%d.%s" % (msg_id.encode("utf-8"), timestamp, body)
