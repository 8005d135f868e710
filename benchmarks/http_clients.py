"""Which HTTP client should the delivery worker use? POST/s with 64 requests in flight.

The receiver is a bare uvicorn app (uvloop + httptools) answering 200 with a small body, in
its own process pinned to the other core; every client posts the same encrypted, signed
bodies from one process on this core. Run by hand:

    taskset -c 0 python benchmarks/http_clients.py --server-core 1 --requests 20000
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable

from verihook.format import SigningSecret, WebhookSecret, encode_request

Requests = list[tuple[dict[str, str], bytes]]

SERVER = """
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(port: int, core: int | None, workdir: str) -> subprocess.Popen[bytes]:
    path = os.path.join(workdir, "bench_receiver.py")
    with open(path, "w") as f:
        f.write(SERVER)
    cmd = [
        sys.executable, "-m", "uvicorn", "bench_receiver:app", "--host", "127.0.0.1",
        "--port", str(port), "--loop", "uvloop", "--http", "httptools",
        "--log-level", "warning", "--no-access-log",
    ]  # fmt: skip
    if core is not None:
        cmd = ["taskset", "-c", str(core), *cmd]
    proc = subprocess.Popen(cmd, cwd=workdir)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("receiver did not start")


def bodies(n: int) -> list[tuple[dict[str, str], bytes]]:
    secret, signing = WebhookSecret.generate(), SigningSecret.generate()
    payload = (
        b'{"event":"VERIFICATION_REVIEWED","key":"b76e244e-26a3-49ef-9c72-3e599bf0b5f2",'
        b'"status":"approved","created":1582628711,"updated":1582628999,"processed":1582628999}'
    )
    now = int(time.time())
    return [
        encode_request(
            payload,
            secret=secret,
            signing_secrets=(signing,),
            msg_id=f"msg_{i}",
            timestamp=now,
            attempt=1,
        )
        for i in range(min(n, 512))
    ]


async def drive(
    post: Callable[[dict[str, str], bytes], Awaitable[int]],
    reqs: list[tuple[dict[str, str], bytes]],
    total: int,
    in_flight: int,
) -> float:
    next_i = 0

    async def lane() -> None:
        nonlocal next_i
        while next_i < total:
            headers, body = reqs[next_i % len(reqs)]
            next_i += 1
            status = await post(headers, body)
            if status != 200:
                raise RuntimeError(f"status {status}")

    started = time.perf_counter()
    await asyncio.gather(*(lane() for _ in range(in_flight)))
    return total / (time.perf_counter() - started)


async def bench_aiohttp(url: str, reqs: Requests, n: int, c: int) -> float:
    import aiohttp

    connector = aiohttp.TCPConnector(limit=c)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def post(headers: dict[str, str], body: bytes) -> int:
            async with session.post(url, data=body, headers=headers, allow_redirects=False) as r:
                await r.read()
                return r.status

        await drive(post, reqs, min(n, 2000), c)  # warm-up: open the connections
        return await drive(post, reqs, n, c)


async def bench_httpx(url: str, reqs: Requests, n: int, c: int) -> float:
    import httpx

    limits = httpx.Limits(max_connections=c, max_keepalive_connections=c)
    async with httpx.AsyncClient(limits=limits, follow_redirects=False) as client:

        async def post(headers: dict[str, str], body: bytes) -> int:
            r = await client.post(url, content=body, headers=headers)
            return r.status_code

        await drive(post, reqs, min(n, 500), c)
        return await drive(post, reqs, n, c)


def run(name: str, fn: Callable[..., Awaitable[float]], *args: object, uvloop: bool) -> float:
    if uvloop:
        import uvloop as _uvloop

        return _uvloop.run(fn(*args))  # type: ignore[no-any-return]
    return asyncio.run(fn(*args))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--httpx-requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--server-core", type=int, default=None)
    args = parser.parse_args()
    import tempfile

    with tempfile.TemporaryDirectory() as workdir:
        port = free_port()
        server = start_server(port, args.server_core, workdir)
        url = f"http://127.0.0.1:{port}/webhooks"
        reqs = bodies(args.requests)
        try:
            results = {
                "aiohttp (asyncio)": run(
                    "aiohttp", bench_aiohttp, url, reqs, args.requests, args.concurrency,
                    uvloop=False,
                ),
                "aiohttp (uvloop)": run(
                    "aiohttp", bench_aiohttp, url, reqs, args.requests, args.concurrency,
                    uvloop=True,
                ),
                "httpx (asyncio)": run(
                    "httpx", bench_httpx, url, reqs, args.httpx_requests, args.concurrency,
                    uvloop=False,
                ),
            }  # fmt: skip
        finally:
            server.terminate()
            server.wait(10)
    base = results["httpx (asyncio)"]
    print(f"{'client':<22} {'POST/s':>9} {'x httpx':>8}")
    for name, rate in results.items():
        print(f"{name:<22} {rate:>9.0f} {rate / base:>8.1f}")


if __name__ == "__main__":
    main()
