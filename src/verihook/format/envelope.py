"""Passbase's encrypted body: base64(IV[16] || AES-256-CBC(PKCS7(json))).

Decryption is on every receiver's hot path. Building a CBC cipher context per call is the
largest cost, so each key keeps one CBC decryptor (per thread). A CBC decryptor's only state
between whole-block updates is the last ciphertext block it saw, so feeding it the body's IV
as a first block sets that state to the IV: the first 16 bytes out are discarded and the
rest is exactly the CBC decryption of the body under that IV.
"""

from __future__ import annotations

import binascii
import os
import threading
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from verihook.exceptions import DecryptionError
from verihook.format.events import UnknownEvent, WebhookEvent
from verihook.format.secrets import WebhookSecret

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers import CipherContext

__all__ = ["decrypt", "encrypt"]

_BLOCK = 16
_WHITESPACE = b" \t\r\n"


def encrypt(
    payload: WebhookEvent | UnknownEvent | bytes,
    secret: WebhookSecret,
    iv: bytes | None = None,
) -> bytes:
    """Encrypt an event (or raw JSON bytes) to the ASCII base64 body Passbase sends."""
    plaintext = payload if isinstance(payload, bytes) else payload.to_json()
    if iv is None:
        iv = os.urandom(_BLOCK)
    elif len(iv) != _BLOCK:
        raise ValueError("iv must be 16 bytes")
    pad = _BLOCK - len(plaintext) % _BLOCK
    encryptor = Cipher(algorithms.AES256(secret.key), modes.CBC(iv)).encryptor()
    ciphertext = encryptor.update(plaintext + bytes((pad,)) * pad) + encryptor.finalize()
    return binascii.b2a_base64(iv + ciphertext, newline=False)


def decrypt(body: bytes | str, secret: WebhookSecret) -> bytes:
    """Decrypt a body to its plaintext bytes. Every failure is the same DecryptionError."""
    if isinstance(body, str):
        try:
            body = body.encode("ascii")
        except UnicodeEncodeError:
            raise DecryptionError() from None
    try:
        raw = binascii.a2b_base64(body.strip(_WHITESPACE), strict_mode=True)
    except binascii.Error:
        raise DecryptionError() from None
    size = len(raw)
    if size < 2 * _BLOCK or size % _BLOCK:
        raise DecryptionError()
    key = secret.key
    try:
        contexts = _per_thread.contexts
    except AttributeError:
        contexts = _per_thread.contexts = {}
    context = contexts.get(key) or _new_context(contexts, key)
    # Whole blocks only (checked above): the context never holds a partial block back.
    plaintext = context.update(raw)
    pad = plaintext[-1]
    if not 1 <= pad <= _BLOCK or plaintext[-pad:] != _PADDINGS[pad]:
        raise DecryptionError()
    return plaintext[_BLOCK:-pad]


# One context per key and per thread: a context is not safe to share between threads (Flask,
# Django, thread pools), and a thread-local lookup is cheaper than taking a lock.
_per_thread = threading.local()
_MAX_KEYS = 64
_PADDINGS = tuple(bytes((n,)) * n for n in range(_BLOCK + 1))


def _new_context(contexts: dict[bytes, CipherContext], key: bytes) -> CipherContext:
    if len(contexts) >= _MAX_KEYS:
        del contexts[next(iter(contexts))]  # forget the oldest key
    # Any IV will do: the first block of every update replaces the chaining state.
    context = Cipher(algorithms.AES256(key), modes.CBC(bytes(_BLOCK))).decryptor()
    contexts[key] = context
    return context
