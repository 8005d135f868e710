"""The sender against real servers on 127.0.0.1: headers, encryption, outcomes, the guard."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult
from delivery_receivers import TestReceiver

from verihook.delivery.address_policy import AddressPolicy
from verihook.delivery.outcome import Outcome
from verihook.delivery.sender import GuardedResolver, OutgoingRequest, Sender
from verihook.format import (
    DecodeOptions,
    SigningSecret,
    WebhookEvent,
    WebhookSecret,
    decode_request,
)

DEV = AddressPolicy(allow_private=True)
PAYLOAD = (
    b'{"event":"VERIFICATION_REVIEWED","key":"b76e244e-26a3-49ef-9c72-3e599bf0b5f2",'
    b'"status":"approved","created":1582628711,"updated":1582628999,"processed":1582628999}'
)
SECRET = WebhookSecret.generate()
SIGNING = SigningSecret.generate()
OLD_SIGNING = SigningSecret.generate()


def request(url: str, **kw: object) -> OutgoingRequest:
    fields: dict[str, object] = {"event_id": "msg_1", "url": url, "payload": PAYLOAD, "attempt": 1}
    fields.update(kw)
    return OutgoingRequest(**fields)  # type: ignore[arg-type]


async def test_encrypted_signed_request_decodes_with_either_signing_secret(
    receiver: TestReceiver,
) -> None:
    async with Sender(DEV) as sender:
        result = await sender.send(
            request(
                receiver.url("/ok"),
                attempt=3,
                encryption_secret=SECRET.reveal(),
                signing_secrets=(SIGNING.reveal(), OLD_SIGNING.reveal()),
            )
        )
    assert (result.outcome, result.status_code, result.response_body) == (
        Outcome.SUCCESS,
        200,
        "ok",
    )
    [got] = receiver.on("/ok")
    assert got.headers["content-type"] == "text/plain"
    assert got.headers["webhook-id"] == "msg_1"
    assert got.headers["webhook-attempt"] == "3"
    assert got.headers["user-agent"].startswith("verihook/")
    assert abs(int(got.headers["webhook-timestamp"]) - time.time()) < 60
    assert len(got.headers["webhook-signature"].split(" ")) == 2
    for signing in (SIGNING, OLD_SIGNING):
        options = DecodeOptions(secret=SECRET, signing_secrets=(signing,))
        event = decode_request(got.headers, got.body, options, time.time())
        assert isinstance(event, WebhookEvent) and event.to_json() == PAYLOAD


async def test_plain_json_without_secret(receiver: TestReceiver) -> None:
    async with Sender(DEV) as sender:
        result = await sender.send(request(receiver.url("/ok")))
    assert result.outcome is Outcome.SUCCESS
    [got] = receiver.on("/ok")
    assert got.headers["content-type"] == "application/json"
    assert got.body == PAYLOAD
    assert "webhook-signature" not in got.headers


@pytest.mark.parametrize(
    ("path", "outcome", "status"),
    [
        ("/fail", Outcome.HTTP_ERROR, 500),
        ("/gone", Outcome.GONE, 410),
        ("/redirect", Outcome.REDIRECT, 302),
        ("/throttle", Outcome.THROTTLED, 429),
        ("/reset", Outcome.CONNECTION_ERROR, None),
    ],
)
async def test_outcomes(receiver: TestReceiver, path: str, outcome: Outcome, status: int) -> None:
    async with Sender(DEV) as sender:
        result = await sender.send(request(receiver.url(path)))
    assert (result.outcome, result.status_code) == (outcome, status)
    assert result.error
    if path == "/redirect":
        assert receiver.on("/ok") == []  # never followed
    if path == "/throttle":
        assert result.retry_after is not None and 0 < result.retry_after - time.time() <= 1.5


async def test_timeout(receiver: TestReceiver) -> None:
    receiver.slow_seconds = 3
    async with Sender(DEV, timeout=0.3) as sender:
        result = await sender.send(request(receiver.url("/slow")))
    assert result.outcome is Outcome.TIMEOUT
    assert result.error == "no answer within 0.3 s"


async def test_response_body_read_up_to_4_kib(receiver: TestReceiver) -> None:
    async with Sender(DEV) as sender:
        result = await sender.send(request(receiver.url("/big")))
        assert result.response_body == "x" * 4096
        # The pool survives the dropped connection.
        again = await sender.send(request(receiver.url("/ok")))
    assert again.outcome is Outcome.SUCCESS


async def test_connection_refused() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    async with Sender(DEV) as sender:
        result = await sender.send(request(f"http://127.0.0.1:{port}/"))
    assert result.outcome is Outcome.CONNECTION_ERROR
    assert result.error is not None and "connect" in result.error


async def test_literal_private_address_refused_without_a_connection(
    receiver: TestReceiver,
) -> None:
    async with Sender(AddressPolicy()) as sender:
        result = await sender.send(request(receiver.url("/ok")))
    assert result.outcome is Outcome.BLOCKED
    assert receiver.requests == []


class _RebindingResolver(AbstractResolver):
    """A hostile DNS: the name resolves to loopback (as a rebinding attack would make it)."""

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            {"hostname": host, "host": "127.0.0.1", "port": port, "family": socket.AF_INET,
             "proto": 0, "flags": 0},
            {"hostname": host, "host": "10.0.0.7", "port": port, "family": socket.AF_INET,
             "proto": 0, "flags": 0},
        ]  # fmt: skip

    async def close(self) -> None:
        pass


async def test_hostname_resolving_to_private_addresses_is_refused(receiver: TestReceiver) -> None:
    import aiohttp

    resolver = GuardedResolver(AddressPolicy(), inner=_RebindingResolver())
    with pytest.raises(OSError, match="non-public"):
        await resolver.resolve("hooks.example.com", 443)
    # Through a whole session: the connector never reaches the receiver.
    connector = aiohttp.TCPConnector(resolver=resolver)
    async with aiohttp.ClientSession(connector=connector) as session:
        sender = Sender(AddressPolicy(), session=session)
        result = await sender.send(request(f"http://hooks.example.com:{receiver.port}/ok"))
    assert result.outcome is Outcome.BLOCKED
    assert receiver.requests == []


async def test_guard_keeps_only_public_addresses() -> None:
    class Mixed(_RebindingResolver):
        async def resolve(
            self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
        ) -> list[ResolveResult]:
            rows = await super().resolve(host, port, family)
            return [*rows, {**rows[0], "host": "93.184.216.34"}]

    resolver = GuardedResolver(AddressPolicy(), inner=Mixed())
    assert [r["host"] for r in await resolver.resolve("h.example", 443)] == ["93.184.216.34"]


async def test_unusable_secret_is_invalid_and_not_leaked(receiver: TestReceiver) -> None:
    async with Sender(DEV) as sender:
        result = await sender.send(
            request(receiver.url("/ok"), encryption_secret="short-secret-value")
        )
    assert result.outcome is Outcome.INVALID
    assert result.error is not None and "short-secret-value" not in result.error
    assert receiver.requests == []
    assert "short-secret-value" not in repr(request("x", encryption_secret="short-secret-value"))


async def test_tls_certificate_failure_is_a_tls_error(tmp_path: object) -> None:
    # A TLS server with a self-signed certificate: verification must fail.
    import datetime
    import ssl

    from aiohttp import web
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    import pathlib

    base = pathlib.Path(str(tmp_path))
    (base / "c.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (base / "k.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(base / "c.pem", base / "k.pem")

    async def ok(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/", ok)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server_ctx)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        async with Sender(DEV) as sender:
            result = await sender.send(request(f"https://127.0.0.1:{port}/"))
        assert result.outcome is Outcome.TLS_ERROR, result
        assert result.error is not None and result.error.startswith("TLS failed")
    finally:
        await asyncio.wait_for(runner.cleanup(), 5)


def test_tls_context_refuses_old_versions() -> None:
    import ssl

    from verihook.delivery.sender import tls_context

    ctx = tls_context()
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
