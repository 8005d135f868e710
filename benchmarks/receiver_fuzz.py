"""HTTP fuzz run against a live ``verihook receive``: random, mutated and malformed requests.

Starts a receiver on a free port (fresh SQLite file, encryption + signing secret), sends a
bounded number of requests built from a seeded RNG (so a failure can be replayed), then checks:
no 5xx, no connection dropped, the server still healthy, and exactly the events answered
"stored" are in the store.

    python benchmarks/receiver_fuzz.py [--requests 5000] [--seed 1] [--max-seconds 120]

Run by hand, never by the test suite. Exit status 0 when every check held.
"""

from __future__ import annotations

import argparse
import base64
import collections
import os
import random
import re
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import orjson

from verihook.format import (
    EventType,
    SigningSecret,
    Status,
    WebhookEvent,
    WebhookSecret,
    encode_request,
    encrypt,
)

SECRET = WebhookSecret.generate()
SIGNING = SigningSecret.generate()
CONTENT_TYPES = [
    "text/plain",
    "text/plain",
    "application/json",
    "text/plain; charset=utf-8",
    "",
    "application/octet-stream",
    "text/plain;;;",
    "\x7f",
    "a" * 300,
]
PATHS = ["/webhooks"] * 8 + ["/", "/events", "/verifications/x", "/healthz", "/x" * 50]
METHODS = ["POST"] * 10 + ["GET", "PUT", "DELETE", "PATCH", "OPTIONS"]


def valid(rng: random.Random) -> tuple[dict[str, str], bytes]:
    event = WebhookEvent(
        event=rng.choice(list(EventType)),
        key=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        status=rng.choice([Status.APPROVED, Status.DECLINED]),
        created=rng.randrange(2**31),
        updated=rng.randrange(2**31),
        processed=rng.randrange(2**31),
    )
    return encode_request(
        event,
        secret=SECRET,
        signing_secrets=[SIGNING],
        msg_id=f"msg_{rng.getrandbits(64):x}",
        timestamp=int(time.time()),
    )


def mutate(rng: random.Random, data: bytes) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        if not buf:
            break
        i = rng.randrange(len(buf))
        match rng.randrange(5):
            case 0:
                buf[i] ^= 1 << rng.randrange(8)
            case 1:
                del buf[i:]
            case 2:
                buf[i:i] = rng.randbytes(rng.randint(1, 16))
            case 3:
                del buf[i]
            case _:
                buf[i] = rng.choice(b"=+/A\n\x00{}")
    return bytes(buf)


def request(rng: random.Random) -> tuple[str, str, dict[str, str], bytes, bool]:
    """(method, path, headers, body, expected to be stored)."""
    headers, body = valid(rng)
    roll = rng.random()
    if roll < 0.15:
        return "POST", "/webhooks", headers, body, True
    if roll < 0.45:
        body = mutate(rng, body)
    elif roll < 0.55:
        # Re-signed, so the mutation reaches decryption and parsing.
        plain = orjson.dumps(
            {
                "event": rng.choice(["VERIFICATION_COMPLETED", "X", 1, None]),
                "key": rng.choice(["b76e244e-26a3-49ef-9c72-3e599bf0b5f2", "k"]),
                "status": rng.choice(["pending", "approved", 3]),
            }
        )
        body = mutate(rng, plain) if rng.random() < 0.5 else plain
        headers, body = encode_request(
            encrypt(body, SECRET),
            signing_secrets=[SIGNING],
            msg_id=f"m{rng.getrandbits(32)}",
            timestamp=int(time.time()),
        )
        headers["content-type"] = "text/plain"
    elif roll < 0.65:
        body = rng.randbytes(rng.randint(0, 4096))
    elif roll < 0.7:
        body = b"A" * rng.randint(65_537, 200_000)
    elif roll < 0.8:
        name = rng.choice(["webhook-id", "webhook-timestamp", "webhook-signature"])
        headers[name] = rng.choice(
            [
                "",
                "v1,",
                "v1," + base64.b64encode(rng.randbytes(32)).decode(),
                "1" * 40,
                "x." * 100,
                str(int(time.time()) - 10_000),
            ]
        )
    else:
        headers["content-type"] = rng.choice(CONTENT_TYPES)
    method = "POST" if rng.random() < 0.9 else rng.choice(METHODS)
    path = "/webhooks" if rng.random() < 0.9 else rng.choice(PATHS)
    return method, path, headers, body, False


def raw_garbage(port: int, rng: random.Random) -> None:
    """A malformed HTTP request straight on a socket: the server must survive it."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(
            rng.choice(
                [
                    b"GARBAGE\r\n\r\n",
                    b"POST /webhooks HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
                    rng.randbytes(200),
                    b"POST / HTTP/9.9\r\n\r\n",
                ]
            )
        )
        try:
            sock.recv(4096)
        except OSError:
            pass


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--max-seconds", type=float, default=120.0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    workdir = Path(tempfile.mkdtemp(prefix="verihook-fuzz-"))
    db = workdir / "fuzz.db"
    env = {
        **os.environ,
        "VERIHOOK_SECRET": SECRET.reveal(),
        "VERIHOOK_SIGNING_SECRET": SIGNING.reveal(),
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "verihook.cli", "receive", "--port", "0", "--db", f"sqlite:///{db}"],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        env=env,
        text=True,
    )
    assert server.stderr is not None
    match = None
    for line in server.stderr:
        if match := re.search(r"receiving on (http://\S+):(\d+)/webhooks", line):
            break
    if match is None:
        print("error: the receiver did not start", file=sys.stderr)
        return 1
    url, port = f"{match.group(1)}:{match.group(2)}", int(match.group(2))
    # Drain the log so the server never blocks on a full pipe.
    drain = subprocess.Popen(["cat"], stdin=server.stderr, stdout=subprocess.DEVNULL)
    statuses: collections.Counter[int] = collections.Counter()
    problems: list[str] = []
    stored = 0
    started = time.monotonic()
    try:
        with httpx.Client(base_url=url, timeout=10) as client:
            for n in range(args.requests):
                if time.monotonic() - started > args.max_seconds:
                    print(f"stopped after {n} requests: --max-seconds reached")
                    break
                if rng.random() < 0.01:
                    raw_garbage(port, rng)
                    continue
                method, path, headers, body, good = request(rng)
                try:
                    reply = client.request(method, path, headers=headers, content=body)
                except httpx.HTTPError as exc:
                    problems.append(f"request {n}: {type(exc).__name__}: {exc}")
                    continue
                statuses[reply.status_code] += 1
                if reply.status_code >= 500:
                    problems.append(f"request {n}: {reply.status_code} {reply.text[:200]}")
                if good and reply.status_code != 200:
                    problems.append(f"request {n}: valid event answered {reply.status_code}")
                if reply.status_code == 200 and path in ("/webhooks", "/") and method == "POST":
                    stored += reply.json() == {"status": "stored"}
            health = client.get("/healthz")
            if health.status_code != 200:
                problems.append(f"/healthz answered {health.status_code} after the run")
    finally:
        server.terminate()
        code = server.wait(30)
        drain.wait(10)
    with sqlite3.connect(db) as conn:
        in_store = conn.execute("SELECT COUNT(*) FROM verihook_inbox_events").fetchone()[0]
    if in_store != stored:
        problems.append(f"{stored} answered 'stored' but {in_store} events are in the store")
    if code != 0:
        problems.append(f"the receiver exited {code} on SIGTERM")
    elapsed = time.monotonic() - started
    print(
        f"seed {args.seed}: {sum(statuses.values())} requests in {elapsed:.1f} s;"
        f" statuses {dict(sorted(statuses.items()))}; stored {stored}, in store {in_store}"
    )
    for problem in problems[:20]:
        print("problem:", problem)
    print("OK" if not problems else f"FAILED: {len(problems)} problems")
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main())
