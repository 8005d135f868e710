"""The receiver as a raw ASGI app: runs alone under uvicorn or mounts in Starlette/FastAPI.

Routes, relative to where the app is mounted (``root_path`` is stripped):
``POST /webhooks`` (and ``POST /``, so ``app.mount("/passbase", ...)`` takes webhooks at
``/passbase``), ``GET /events?limit=N``, ``GET /verifications/{key}``, ``GET /healthz``.
The webhook path is the hot one: no framework, no per-request allocation it can avoid.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import orjson

from verihook.exceptions import StoreUnavailable
from verihook.receiver.receiver import DUPLICATE, STORED, UNAVAILABLE, Reply

if TYPE_CHECKING:
    from verihook.receiver.receiver import Receiver

__all__ = ["ReceiverApp"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_WEBHOOK_PATHS = frozenset(("/webhooks", "/webhooks/", "/", ""))
_MAX_EVENTS = 1000
_TOO_LARGE = Reply.error(413, "body is over 65536 bytes")
_NOT_FOUND = Reply.error(404, "not found")
_UNAVAILABLE = Reply.error(503, "store unavailable, retry later", (("retry-after", "5"),))
_HEALTHY = Reply(200, b'{"status":"ok"}')


def _method_not_allowed(allow: str) -> Reply:
    return Reply.error(405, "method not allowed", (("allow", allow),))


_POST_ONLY = _method_not_allowed("POST")
_GET_ONLY = _method_not_allowed("GET, HEAD")


class ReceiverApp:
    def __init__(self, receiver: Receiver) -> None:
        self.receiver = receiver
        self.max_body_size = receiver.options.max_body_size
        # The constant answers (stored, duplicate, 405, 413, 503) are encoded once.
        self._encoded = {
            id(reply): self._encode(reply)
            for reply in (
                STORED,
                DUPLICATE,
                UNAVAILABLE,
                _TOO_LARGE,
                _NOT_FOUND,
                _POST_ONLY,
                _GET_ONLY,
                _UNAVAILABLE,
                _HEALTHY,
            )
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        elif kind == "websocket":
            await send({"type": "websocket.close", "code": 1000})

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        root: str = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root) :]
        method: str = scope["method"]
        if path in _WEBHOOK_PATHS:
            if method != "POST":
                return await self._send(send, _POST_ONLY)
            return await self._webhook(scope, receive, send)
        if path == "/events" or path == "/healthz" or path.startswith("/verifications/"):
            if method not in ("GET", "HEAD"):
                return await self._send(send, _GET_ONLY)
            if path == "/events":
                return await self._send(send, await self._events(scope))
            if path == "/healthz":
                return await self._send(send, await self._health())
            return await self._send(send, await self._verification(path[len("/verifications/") :]))
        await self._send(send, _NOT_FOUND)

    async def _webhook(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = {
            name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]
        }
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_size:
            # Answer before reading a byte of it.
            return await self._send(send, _TOO_LARGE)
        message = await receive()
        body: bytes = message.get("body", b"")
        if message.get("more_body", False):
            chunks = [body]
            size = len(body)
            while True:
                if size > self.max_body_size:
                    return await self._send(send, _TOO_LARGE)
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                chunk = message.get("body", b"")
                size += len(chunk)
                chunks.append(chunk)
                if not message.get("more_body", False):
                    break
            body = b"".join(chunks)
        elif message["type"] == "http.disconnect":
            return
        if len(body) > self.max_body_size:
            return await self._send(send, _TOO_LARGE)
        await self._send(send, await self.receiver.receive(headers, body))

    async def _events(self, scope: Scope) -> Reply:
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        raw = query.get("limit", ["50"])[-1]
        if not raw.isdigit() or not 1 <= int(raw) <= _MAX_EVENTS:
            return Reply.error(400, f"limit must be an integer from 1 to {_MAX_EVENTS}")
        try:
            events = await asyncio.to_thread(self.receiver.recent_events, int(raw))
        except StoreUnavailable:
            return _UNAVAILABLE
        return Reply(200, orjson.dumps([e.to_dict() for e in events]))

    async def _verification(self, key: str) -> Reply:
        def load() -> tuple[Any, Any]:
            return self.receiver.state(key), self.receiver.history(key)

        try:
            state, history = await asyncio.to_thread(load)
        except StoreUnavailable:
            return _UNAVAILABLE
        if state is None and not history:
            return Reply.error(404, "no events received for this verification")
        return Reply(
            200,
            orjson.dumps(
                {
                    "key": key.lower(),
                    "state": None if state is None else state.to_dict(),
                    "events": [e.to_dict() for e in history],
                }
            ),
        )

    async def _health(self) -> Reply:
        def check() -> None:
            self.receiver.open()
            with self.receiver.database.connection() as conn:
                conn.execute("SELECT 1")

        try:
            await asyncio.to_thread(check)
        except StoreUnavailable:
            return _UNAVAILABLE
        return _HEALTHY

    async def _send(self, send: Send, reply: Reply) -> None:
        cached = self._encoded.get(id(reply))
        if cached is None:
            start, body = self._encode(reply)
        else:
            # Fresh copies: middleware (MutableHeaders) may edit the messages it is sent.
            start, body = cached
            start = {**start, "headers": list(start["headers"])}
            body = {**body}
        await send(start)
        await send(body)

    @staticmethod
    def _encode(reply: Reply) -> tuple[dict[str, Any], dict[str, Any]]:
        headers = [
            (b"content-type", reply.content_type.encode("latin-1")),
            (b"content-length", str(len(reply.body)).encode("latin-1")),
        ]
        headers.extend((k.encode("latin-1"), v.encode("latin-1")) for k, v in reply.headers)
        return (
            {"type": "http.response.start", "status": reply.status, "headers": headers},
            {"type": "http.response.body", "body": reply.body},
        )

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await asyncio.to_thread(self.receiver.start)
                except Exception as exc:
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await asyncio.to_thread(self.receiver.stop)
                await send({"type": "lifespan.shutdown.complete"})
                return
