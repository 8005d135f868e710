"""Peer (b), the ceiling: a raw ASGI app that reads the body and answers 200, doing nothing else.

Served by the same stack as ``verihook receive`` (uvicorn, uvloop, httptools, one worker, no
access log), it shows what that stack costs on its own; the receiver can only come below it.
Run: ``uvicorn --app-dir benchmarks ceiling_app:app --loop uvloop --http httptools --no-access-log``
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-type", b"text/plain"), (b"content-length", b"2")],
}
_BODY = {"type": "http.response.body", "body": b"OK"}


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        # Lifespan and anything else: nothing to set up, and nothing to refuse.
        return
    # Read the whole body, as a receiver must before it can decrypt it.
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send(_START)
    await send(_BODY)
