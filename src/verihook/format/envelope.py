"""Passbase's encrypted body: base64(IV[16] || AES-256-CBC(PKCS7(json))).

Decryption is on every receiver's hot path. Building a CBC cipher context per call is the
largest cost, so each key keeps one AES-ECB decryptor (stateless for whole blocks) and CBC
is finished by XOR-ing each decrypted block with the previous ciphertext block.
"""

from __future__ import annotations

import binascii
import os
import threading
from functools import lru_cache
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
    ecb = _ecb_decryptor(secret.key)
    with ecb.lock:
        blocks = ecb.context.update(memoryview(raw)[_BLOCK:])
    # CBC: P_i = D(C_i) xor C_{i-1}, with C_0 = IV. One big-int XOR does every block at once.
    mixed = int.from_bytes(blocks, "big") ^ int.from_bytes(memoryview(raw)[: size - _BLOCK], "big")
    plaintext = mixed.to_bytes(size - _BLOCK, "big")
    pad = plaintext[-1]
    if not 1 <= pad <= _BLOCK or plaintext[-pad:] != bytes((pad,)) * pad:
        raise DecryptionError()
    return plaintext[:-pad]


class _EcbDecryptor:
    __slots__ = ("context", "lock")

    def __init__(self, key: bytes) -> None:
        self.context: CipherContext = Cipher(algorithms.AES256(key), modes.ECB()).decryptor()
        # A cipher context is not safe to share between threads (Flask, Django, thread pools).
        self.lock = threading.Lock()


@lru_cache(maxsize=64)
def _ecb_decryptor(key: bytes) -> _EcbDecryptor:
    return _EcbDecryptor(key)
