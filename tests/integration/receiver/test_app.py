"""The ASGI app over real HTTP (uvicorn on an ephemeral port), and mounted in Starlette/FastAPI."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from receiver_factories import KEY, SECRET, LiveServer, encrypted, make_event, wait_for

from verihook import Receiver
from verihook.format import EventType, Status


@pytest.fixture
def receiver(database_url: str) -> Receiver:
    return Receiver(SECRET, database_url=database_url)


@pytest.fixture
def live(receiver: Receiver) -> Iterator[str]:
    with LiveServer(receiver.asgi_app()) as server:
        yield server.url


def test_webhook_events_and_verification_over_http(live: str, receiver: Receiver) -> None:
    seen: list[Any] = []
    receiver.on("VERIFICATION_REVIEWED")(seen.append)
    with httpx.Client(base_url=live, timeout=10) as client:
        for event in [make_event(), make_event(EventType.VERIFICATION_REVIEWED, Status.DECLINED)]:
            headers, body = encrypted(event)
            reply = client.post("/webhooks", headers=headers, content=body)
            assert (reply.status_code, reply.json()) == (200, {"status": "stored"})
            assert reply.headers["content-type"] == "application/json"
        events = client.get("/events").json()
        assert [e["event"] for e in events] == ["VERIFICATION_REVIEWED", "VERIFICATION_COMPLETED"]
        assert len(client.get("/events", params={"limit": 1}).json()) == 1
        for bad in ["0", "x", "5000"]:
            assert client.get("/events", params={"limit": bad}).status_code == 400
        verification = client.get(f"/verifications/{KEY.upper()}").json()
        assert verification["state"]["status"] == "declined"
        assert [e["status"] for e in verification["events"]] == ["pending", "declined"]
        missing = client.get("/verifications/00000000-0000-4000-8000-000000000000")
        assert missing.status_code == 404
        assert client.get("/healthz").json() == {"status": "ok"}
        # The lifespan started the dispatcher: the handler runs without anyone asking.
        wait_for(lambda: seen, 10, "the REVIEWED handler")


def test_methods_and_unknown_paths(live: str) -> None:
    with httpx.Client(base_url=live, timeout=10) as client:
        reply = client.get("/webhooks")
        assert (reply.status_code, reply.headers["allow"]) == (405, "POST")
        reply = client.post("/events")
        assert (reply.status_code, reply.headers["allow"]) == (405, "GET, HEAD")
        assert client.delete("/healthz").status_code == 405
        assert client.get("/nope").status_code == 404
        assert client.post("/nope").status_code == 404


def test_bodies_over_64_kib_are_refused_while_streaming(live: str, receiver: Receiver) -> None:
    with httpx.Client(base_url=live, timeout=10) as client:
        big = b"A" * (64 * 1024 + 1)
        reply = client.post("/webhooks", headers={"content-type": "text/plain"}, content=big)
        assert reply.status_code == 413

        def chunks() -> Iterator[bytes]:
            # No content-length: the cap must hold while the chunks arrive.
            for _ in range(100):
                yield b"A" * 4096

        reply = client.post("/webhooks", headers={"content-type": "text/plain"}, content=chunks())
        assert reply.status_code == 413
        # Exactly at the cap is not too large: it fails later, as a body.
        reply = client.post(
            "/webhooks", headers={"content-type": "text/plain"}, content=b"A" * 65536
        )
        assert reply.status_code == 400
    assert receiver.recent_events() == []


def test_refusals_over_http_carry_the_reason(live: str) -> None:
    with httpx.Client(base_url=live, timeout=10) as client:
        reply = client.post(
            "/webhooks",
            headers={"content-type": "application/json"},
            content=make_event().to_json(),
        )
        assert reply.status_code == 415
        assert "expects encryption" in reply.json()["error"]


@pytest.mark.parametrize("framework", ["starlette", "fastapi"])
async def test_mounted_in_a_framework(framework: str, sqlite_url: str) -> None:
    receiver = Receiver(SECRET, database_url=sqlite_url)
    if framework == "starlette":
        from starlette.applications import Starlette
        from starlette.routing import Mount

        app: Any = Starlette(routes=[Mount("/passbase", app=receiver.asgi_app())])
    else:
        from fastapi import FastAPI

        app = FastAPI()
        app.mount("/passbase", receiver.asgi_app())
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            headers, body = encrypted(make_event())
            # Starlette redirects "/passbase" to "/passbase/" (redirect_slashes) before us.
            for path in ["/passbase/", "/passbase/webhooks"]:
                reply = await client.post(path, headers=headers, content=body)
                assert reply.status_code == 200
            events = (await client.get("/passbase/events")).json()
            assert [e["key"] for e in events] == [KEY]
            assert (await client.get(f"/passbase/verifications/{KEY}")).status_code == 200
            assert (await client.get("/passbase/nope")).status_code == 404
    finally:
        receiver.stop()
