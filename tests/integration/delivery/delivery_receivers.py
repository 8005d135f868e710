"""Real HTTP receivers on 127.0.0.1 for delivery tests: an aiohttp server in its own thread.

Each path behaves one way (``/ok``, ``/fail``, ``/gone``, ``/redirect``, ``/slow``, ``/reset``,
``/throttle``, ``/big``, ``/nul``, ``/flaky``); every request is recorded with its headers and body.
Running in a thread, it serves in-process workers and worker subprocesses alike.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float


@dataclass
class TestReceiver:
    __test__ = False

    requests: list[Received] = field(default_factory=list)
    slow_seconds: float = 5.0
    flaky_failures: int = 2  # /flaky answers 500 this many times per webhook-id, then 200
    port: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _loop: asyncio.AbstractEventLoop | None = None
    _runner: web.AppRunner | None = None
    _thread: threading.Thread | None = None

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def on(self, path: str) -> list[Received]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def ids(self, path: str) -> list[str]:
        return [r.headers.get("webhook-id", "") for r in self.on(path)]

    def wait_for(self, condition: Callable[[], bool], timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError("condition not met in time")
            time.sleep(0.02)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        path = request.path
        headers = {k.lower(): v for k, v in request.headers.items()}
        msg_id = headers.get("webhook-id")
        with self._lock:
            self.requests.append(Received(path, headers, body, time.time()))
            seen = sum(
                1 for r in self.requests if r.path == path and r.headers.get("webhook-id") == msg_id
            )
        if path == "/fail":
            return web.Response(status=500, text="boom")
        if path == "/gone":
            return web.Response(status=410, text="gone")
        if path == "/redirect":
            raise web.HTTPFound(self.url("/ok"))
        if path == "/throttle":
            return web.Response(status=429, headers={"Retry-After": "1"})
        if path == "/slow":
            await asyncio.sleep(self.slow_seconds)
            return web.Response(text="late")
        if path == "/steady":
            await asyncio.sleep(0.05)
            return web.Response(text="ok")
        if path == "/big":
            return web.Response(body=b"x" * 10_000)
        if path == "/nul":  # NUL bytes: PostgreSQL's text columns refuse them
            return web.Response(body=b"ok\x00\x00 thanks\x00")
        if path == "/reset":
            assert request.transport is not None
            request.transport.abort()
            await asyncio.sleep(1)
            return web.Response(text="unreachable")
        if path == "/flaky" and seen <= self.flaky_failures:
            return web.Response(status=500, text="not yet")
        return web.Response(text="ok")

    def start(self) -> TestReceiver:
        ready = threading.Event()

        def serve() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            app = web.Application()
            app.router.add_route("*", "/{tail:.*}", self._handle)
            self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
            loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            loop.run_until_complete(site.start())
            server = site._server
            assert server is not None
            self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            ready.set()
            loop.run_forever()
            for task in asyncio.all_tasks(loop):
                task.cancel()
            loop.run_until_complete(self._runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=serve, daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("test receiver did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)
