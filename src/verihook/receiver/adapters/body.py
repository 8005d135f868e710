"""What every WSGI-style adapter answers before the core: 405, and 413 without reading it all.

The core refuses an oversized body too, but only once it holds the whole body in memory; an
adapter checks Content-Length first and never reads more than one byte past the cap.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from verihook.receiver.receiver import Reply

__all__ = [
    "METHOD_NOT_ALLOWED",
    "declared_too_large",
    "lowercase_headers",
    "read_capped",
    "too_large",
]

# The same answers, byte for byte, as the ASGI app's.
METHOD_NOT_ALLOWED = Reply.error(405, "method not allowed", (("allow", "POST"),))

_CHUNK = 16 * 1024


def too_large(limit: int) -> Reply:
    return Reply.error(413, f"body is over {limit} bytes")


def declared_too_large(content_length: str | None, limit: int) -> bool:
    """True when a Content-Length header already says the body is over the cap."""
    if content_length is None:
        return False
    value = content_length.strip()
    return value.isdigit() and int(value) > limit


def read_capped(read: Callable[[int], bytes], limit: int) -> bytes | None:
    """Read to the end through ``read(n)``, or return None as soon as it goes over ``limit``."""
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = read(min(_CHUNK, limit + 1 - size))
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            return None


def lowercase_headers(items: Iterable[tuple[str, str]]) -> Mapping[str, str]:
    # Framework header objects iterate differently (werkzeug yields pairs, Django yields
    # names); a plain dict of lower-case names is what the core reads fastest.
    return {name.lower(): value for name, value in items}
