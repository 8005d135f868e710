"""One delivery attempt over HTTP: build the request, POST it, classify what came back.

aiohttp, chosen by measurement (benchmarks/RESULTS.md: ~26x httpx at 64 in flight). The SSRF
guard sits in the resolver: every address DNS returns goes through the address policy and only
those allowed are handed to the connector, so the socket connects to exactly a checked address
(no window for DNS rebinding). Literal IPs skip DNS, so they are checked here before the POST.
Error texts are built here from the error's kind, never copied from a driver message that
could hold a URL with a token in it; secrets never reach a message at all.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from verihook.delivery.address_policy import AddressPolicy, BlockedAddress
from verihook.delivery.outcome import Outcome, classify_status, parse_retry_after
from verihook.exceptions import InvalidSecret
from verihook.format import SigningSecret, WebhookSecret, encode_request

__all__ = [
    "DEFAULT_TIMEOUT",
    "MAX_RESPONSE_BODY",
    "AttemptResult",
    "GuardedResolver",
    "OutgoingRequest",
    "Sender",
    "tls_context",
]

DEFAULT_TIMEOUT = 15.0
MAX_RESPONSE_BODY = 4096


@dataclass(frozen=True, slots=True)
class OutgoingRequest:
    """Everything one attempt needs. ``payload`` is the event's plaintext JSON."""

    event_id: str
    url: str
    payload: bytes
    attempt: int
    encryption_secret: str | None = None
    signing_secrets: Sequence[str] = ()

    def __repr__(self) -> str:  # the dataclass repr would print the secrets
        return f"OutgoingRequest(event_id={self.event_id!r}, attempt={self.attempt})"


@dataclass(frozen=True, slots=True)
class AttemptResult:
    outcome: Outcome
    latency_ms: float
    status_code: int | None = None
    error: str | None = None
    response_body: str | None = None
    retry_after: float | None = None  # absolute unix time, from Retry-After on 429/503


def tls_context() -> ssl.SSLContext:
    """Certificates and host names verified against the system store; TLS 1.2 at least."""
    context = ssl.create_default_context()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


class BlockedConnection(OSError):
    """Raised by the resolver: every address of the host is refused by the policy."""


class GuardedResolver(AbstractResolver):
    """Resolve, then keep only the addresses the policy allows."""

    def __init__(self, policy: AddressPolicy, inner: AbstractResolver | None = None) -> None:
        self.policy = policy
        self.inner = inner if inner is not None else DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self.inner.resolve(host, port, family)
        allowed = [r for r in results if self.policy.is_allowed(r["host"])]
        if not allowed:
            raise BlockedConnection(f"host {host} resolves only to non-public addresses")
        return allowed

    async def close(self) -> None:
        await self.inner.close()


class Sender:
    """POSTs attempts through one pooled aiohttp session. Use as ``async with Sender():``.

    ``session`` is the injection point (a session of your own, e.g. with another connector);
    when given, the caller owns it and must apply its own address guard.
    """

    def __init__(
        self,
        policy: AddressPolicy | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        session: aiohttp.ClientSession | None = None,
        clock: Callable[[], float] = time.time,
        ssl_context: ssl.SSLContext | None = None,
        connections: int = 0,
    ) -> None:
        self.policy = policy if policy is not None else AddressPolicy()
        self.timeout = timeout
        self.clock = clock
        self._ssl = ssl_context if ssl_context is not None else tls_context()
        self._session = session
        self._owns_session = session is None
        self._connections = connections

    async def __aenter__(self) -> Sender:
        self.session  # noqa: B018 - open now, inside the running loop
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(
                resolver=GuardedResolver(self.policy),
                ssl=self._ssl,
                limit=self._connections,
                limit_per_host=0,
                ttl_dns_cache=10,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                auto_decompress=False,
                # No cookies between endpoints, and no proxy settings from the environment.
                cookie_jar=aiohttp.DummyCookieJar(),
                trust_env=False,
                skip_auto_headers=("User-Agent",),
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None and self._owns_session:
            await self._session.close()
        self._session = None

    def build(self, request: OutgoingRequest, now: float) -> tuple[dict[str, str], bytes]:
        """Headers and body, encrypted and signed as the endpoint is configured."""
        secret = (
            WebhookSecret(request.encryption_secret)
            if request.encryption_secret is not None
            else None
        )
        signing = tuple(SigningSecret(s) for s in request.signing_secrets)
        return encode_request(
            request.payload,
            secret=secret,
            signing_secrets=signing,
            msg_id=request.event_id,
            timestamp=int(now),
            attempt=request.attempt,
        )

    async def send(self, request: OutgoingRequest) -> AttemptResult:
        started = time.perf_counter()

        def result(outcome: Outcome, error: str, **kw: Any) -> AttemptResult:
            latency = (time.perf_counter() - started) * 1000.0
            return AttemptResult(outcome, latency, error=error, **kw)

        try:
            headers, body = self.build(request, self.clock())
        except (InvalidSecret, ValueError):
            return result(Outcome.INVALID, "the endpoint's secrets cannot be used")
        try:
            self._check_literal(request.url)
        except BlockedAddress as exc:
            return result(Outcome.BLOCKED, str(exc))
        except ValueError:
            return result(Outcome.INVALID, "the endpoint URL is malformed")
        try:
            async with self.session.post(
                request.url, data=body, headers=headers, allow_redirects=False
            ) as response:
                text = await _read_start(response)
                status = response.status
                retry_after = None
                if status in (429, 503):
                    retry_after = parse_retry_after(
                        response.headers.get("Retry-After"), self.clock()
                    )
        except TimeoutError:
            return result(Outcome.TIMEOUT, f"no answer within {self.timeout:g} s")
        except aiohttp.ClientSSLError as exc:
            return result(Outcome.TLS_ERROR, f"TLS failed: {_tls_reason(exc)}")
        except aiohttp.ClientConnectorError as exc:
            if isinstance(exc.os_error, BlockedConnection):
                return result(Outcome.BLOCKED, str(exc.os_error))
            return result(Outcome.CONNECTION_ERROR, f"cannot connect: {_os_reason(exc.os_error)}")
        except aiohttp.ServerDisconnectedError:
            return result(Outcome.CONNECTION_ERROR, "connection closed before a response")
        except aiohttp.ClientOSError as exc:
            return result(Outcome.CONNECTION_ERROR, f"connection failed: {_os_reason(exc)}")
        except aiohttp.ClientPayloadError:
            return result(Outcome.CONNECTION_ERROR, "response body cut short")
        except aiohttp.ClientResponseError as exc:
            return result(Outcome.CONNECTION_ERROR, f"malformed response ({exc.status})")
        except aiohttp.InvalidURL:
            return result(Outcome.INVALID, "the endpoint URL is malformed")
        except aiohttp.ClientError as exc:
            return result(Outcome.CONNECTION_ERROR, f"request failed: {type(exc).__name__}")
        latency = (time.perf_counter() - started) * 1000.0
        outcome = classify_status(status)
        error = None if outcome is Outcome.SUCCESS else f"HTTP {status}"
        return AttemptResult(outcome, latency, status, error, text, retry_after)

    def _check_literal(self, url: str) -> None:
        host = urlsplit(url).hostname or ""
        try:
            literal = ipaddress.ip_address(host)
        except ValueError:
            return
        self.policy.check_address(literal)


async def _read_start(response: aiohttp.ClientResponse) -> str:
    """Up to 4 KiB of the body; the connection is dropped rather than drained past that."""
    chunks: list[bytes] = []
    size = 0
    while size < MAX_RESPONSE_BODY:
        chunk = await response.content.read(MAX_RESPONSE_BODY - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    if not response.content.at_eof():
        response.close()
    # NUL as U+FFFD, as undecodable bytes are: PostgreSQL's text columns refuse NUL, and a
    # record that cannot be written would be retried (and its delivery re-sent) for ever.
    return b"".join(chunks).decode("utf-8", errors="replace").replace("\x00", "\ufffd")


def _os_reason(error: BaseException) -> str:
    if isinstance(error, OSError) and error.strerror:
        return error.strerror.lower()
    if isinstance(error, asyncio.TimeoutError):
        return "timed out"
    return type(error).__name__


def _tls_reason(exc: aiohttp.ClientSSLError) -> str:
    cause = getattr(exc, "os_error", None) or exc.__cause__
    reason = getattr(cause, "reason", None) or getattr(cause, "verify_message", None)
    return str(reason).lower() if reason else "handshake failed"
