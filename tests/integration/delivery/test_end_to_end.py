"""The provider and the worker against real receivers in their own processes.

(i) ``verihook receive`` configured with the endpoint's secret and signing secret: each event
must decrypt and verify there (anything else is a 4xx, a failed attempt), and the receiver's
reconciled state must end where the provider's is, whatever order the events arrived in.
(ii) A plain Node.js server decrypting the way the Passbase guide does.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from verihook.delivery.worker import Worker
from verihook.format import WebhookSecret
from verihook.provider import SyncProvider
from verihook.store import Database

NODE_RECEIVER = Path(__file__).parent / "node" / "guide_receiver.js"
START_TIMEOUT = 20.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Served:
    """A receiver subprocess and the port it reported once listening."""

    def __init__(self, proc: subprocess.Popen[str], port: int, reader: threading.Thread) -> None:
        self.proc = proc
        self.port = port
        self.reader = reader

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.reader.join(5)
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()


def start(cmd: list[str], env: dict[str, str], pattern: str, stream: str) -> Served:
    """Start ``cmd`` and read ``stream`` (stdout or stderr) until ``pattern`` names the port."""
    proc = subprocess.Popen(
        cmd,
        env={**os.environ, **env},
        stdout=subprocess.PIPE if stream == "stdout" else subprocess.DEVNULL,
        stderr=subprocess.PIPE if stream == "stderr" else subprocess.DEVNULL,
        text=True,
    )
    pipe = proc.stdout if stream == "stdout" else proc.stderr
    assert pipe is not None
    found: list[int] = []
    seen: list[str] = []

    def read() -> None:
        for line in pipe:
            seen.append(line)
            match = re.search(pattern, line)
            if match and not found:
                found.append(int(match.group(1)))
        # Keep draining (the loop above runs to EOF) so the child never blocks on a full pipe.

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    deadline = time.monotonic() + START_TIMEOUT
    while not found:
        if proc.poll() is not None or time.monotonic() > deadline:
            Served(proc, 0, reader).stop()
            raise AssertionError(f"receiver did not start: {''.join(seen)[-2000:]}")
        time.sleep(0.02)
    return Served(proc, found[0], reader)


def make_events(provider: SyncProvider, n: int) -> list[str]:
    """``n`` verifications through every path of the lifecycle; returns their keys.

    Thresholds approve >= 0.8 and decline < 0.2: high and low scores send COMPLETED and
    REVIEWED together, middle scores send COMPLETED (pending) and some get a manual review.
    """
    provider.set_thresholds(approve=0.8, decline=0.2)
    keys = [provider.create_verification().key for _ in range(n)]
    scores = (0.9, 0.1, 0.5, 0.5, 0.5)
    for i, key in enumerate(keys):
        provider.complete(key, scores[i % len(scores)])
        if i % 5 == 3:
            provider.review(key, "approve")
        elif i % 5 == 4 and i % 2 == 0:
            provider.review(key, "decline")
    return keys


def delivery_states(database: Database) -> list[tuple[str, int]]:
    with database.connection() as conn:
        rows = conn.execute("SELECT state, attempts FROM verihook_deliveries")
    return sorted((str(state), int(attempts)) for state, attempts in rows)


def provider_events(database: Database) -> dict[str, tuple[str, str]]:
    """Event id -> (verification key, event type): what the provider queued."""
    with database.connection() as conn:
        rows = conn.execute("SELECT id, verification_key, event_type FROM verihook_events")
    return {str(i): (str(k), str(t)) for i, k, t in rows}


@pytest.fixture
def receive_db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/received.db"


async def test_every_event_reaches_verihook_receive_and_reconciles(
    database_url: str, database: Database, receive_db: str
) -> None:
    provider = SyncProvider(database_url, allow_private_networks=True)
    # The endpoint (and so its generated secrets) first, then the receiver configured with
    # them on the endpoint's port.
    port = free_port()
    endpoint = provider.add_endpoint(f"http://127.0.0.1:{port}/webhooks")
    assert endpoint.encryption_secret is not None
    served = start(
        [sys.executable, "-m", "verihook.cli", "receive", "--port", str(port), "--db", receive_db],
        # Through the environment, so the secrets never show in the process list.
        {
            "VERIHOOK_SECRET": endpoint.encryption_secret.reveal(),
            "VERIHOOK_SIGNING_SECRET": endpoint.signing_secret.reveal(),
        },
        r"receiving on http://127\.0\.0\.1:(\d+)/webhooks \(encrypted, signed",
        "stderr",
    )
    try:
        keys = make_events(provider, 25)
        queued = provider_events(database)
        assert len(queued) > len(keys)  # some verifications sent two events

        worker = Worker(database_url, allow_private_networks=True, concurrency=16)
        await worker.run_until_idle()

        # Every delivery succeeded at its first attempt: the receiver answered 2xx, which it
        # does only once the body decrypted, verified and was stored.
        assert delivery_states(database) == [("succeeded", 1)] * len(queued)
        async with httpx.AsyncClient(base_url=served.url(""), timeout=10) as client:
            events = (await client.get("/events", params={"limit": 1000})).json()
            assert sorted(e["webhook_id"] for e in events) == sorted(queued)
            assert all(e["duplicates"] == 0 for e in events)
            assert {e["webhook_id"]: (e["key"], e["event"]) for e in events} == queued
            for key in keys:
                got = await client.get(f"/verifications/{key}")
                assert got.status_code == 200, key
                state = got.json()["state"]
                expected = provider.get_verification(key)
                reviewed = expected.reviewed_at is not None
                assert state == {
                    "key": key,
                    "event": "VERIFICATION_REVIEWED" if reviewed else "VERIFICATION_COMPLETED",
                    "status": expected.status.value,
                    "created": expected.created,
                    "updated": expected.updated,
                    "processed": expected.processed,
                }, key
    finally:
        served.stop()
        provider.close()
    assert served.proc.returncode == 0


@pytest.fixture
def node() -> Iterator[str]:
    path = shutil.which("node")
    if path is None:
        pytest.skip("node is not installed: the Node.js end-to-end test needs it on PATH")
    yield path


async def test_every_event_decrypts_in_node_the_guides_way(
    database_url: str, database: Database, node: str
) -> None:
    provider = SyncProvider(database_url, allow_private_networks=True)
    secret = WebhookSecret.generate().reveal()
    served = start(
        [node, str(NODE_RECEIVER)], {"WEBHOOK_SECRET": secret}, r"listening (\d+)", "stdout"
    )
    try:
        provider.add_endpoint(served.url("/passbase"), secret=secret)
        keys = make_events(provider, 20)
        queued = provider_events(database)

        worker = Worker(database_url, allow_private_networks=True, concurrency=16)
        await worker.run_until_idle()

        assert delivery_states(database) == [("succeeded", 1)] * len(queued)
        async with httpx.AsyncClient(timeout=10) as client:
            got = (await client.get(served.url("/received"))).json()
        assert got["refused"] == 0
        by_id = {r["webhook_id"]: r["event"] for r in got["received"]}
        assert len(got["received"]) == len(queued) == len(by_id)
        assert {i: (e["key"], e["event"]) for i, e in by_id.items()} == queued
        assert {e["key"] for e in by_id.values()} == set(keys)
        for event in by_id.values():
            # The guide's JSON.parse gives the wire's fields, in the wire's order.
            assert list(event) == ["event", "key", "status", "created", "updated", "processed"]
            assert event["status"] in ("pending", "approved", "declined")
    finally:
        served.stop()
        provider.close()
