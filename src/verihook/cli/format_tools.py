"""Format tools: encrypt and decrypt bodies, make secrets, send one test webhook."""

from __future__ import annotations

import sys
import time
import uuid
from typing import Annotated

import httpx
import typer

from verihook.cli.errors import fail, reports_errors
from verihook.format import (
    EventType,
    SigningSecret,
    Status,
    UnknownEvent,
    WebhookEvent,
    WebhookSecret,
    encode_request,
    envelope,
    parse_event,
)

__all__ = ["decrypt", "encrypt", "secret", "send"]

_SECRET_HELP = "Webhook secret: 32 bytes of UTF-8 text."
_SIGNING_HELP = "Standard Webhooks signing secret (whsec_...): adds webhook-signature."

SecretOption = Annotated[
    str, typer.Option("--secret", envvar="VERIHOOK_SECRET", help=_SECRET_HELP, show_default=False)
]
OptionalSecretOption = Annotated[
    str | None,
    typer.Option(
        "--secret",
        envvar="VERIHOOK_SECRET",
        help=_SECRET_HELP + " Without one the body is plain JSON.",
        show_default=False,
    ),
]
SigningSecretOption = Annotated[
    str | None,
    typer.Option(
        "--signing-secret",
        envvar="VERIHOOK_SIGNING_SECRET",
        help=_SIGNING_HELP,
        show_default=False,
    ),
]


def _read_stdin() -> bytes:
    return sys.stdin.buffer.read()


def _write_stdout(data: bytes) -> None:
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


def _parse_iv(value: str | None) -> bytes | None:
    if value is None:
        return None
    try:
        iv = bytes.fromhex(value)
    except ValueError:
        iv = b""
    if len(iv) != 16:
        raise typer.BadParameter("must be 32 hex digits (16 bytes)", param_hint="'--iv'")
    return iv


@reports_errors
def encrypt(
    secret: SecretOption,
    iv: Annotated[
        str | None,
        typer.Option(
            "--iv",
            metavar="HEX",
            help="IV as 32 hex digits, for reproducible output (default: random).",
        ),
    ] = None,
    raw: Annotated[
        bool, typer.Option("--raw", help="Encrypt stdin byte for byte, without checking it.")
    ] = False,
) -> None:
    """Encrypt a JSON event from stdin into a Passbase body (base64) on stdout.

    The event is checked first and surrounding whitespace dropped; --raw encrypts any bytes.

    Example: verihook encrypt --secret YOUR_WEBHOOK_SECRET_32_BYTES_KEY < event.json > body.txt
    """
    iv_bytes = _parse_iv(iv)
    key = WebhookSecret(secret)
    plaintext = _read_stdin()
    if not raw:
        plaintext = plaintext.strip()
        parse_event(plaintext)
    _write_stdout(envelope.encrypt(plaintext, key, iv_bytes) + b"\n")


@reports_errors
def decrypt(
    secret: SecretOption,
    raw: Annotated[
        bool,
        typer.Option(
            "--raw", help="Print the plaintext byte for byte (no newline), without checking it."
        ),
    ] = False,
) -> None:
    """Decrypt a Passbase body from stdin and print the JSON event on stdout.

    The event is checked: an invalid one exits 1 with the reason (unless --raw).

    Example: verihook decrypt --secret YOUR_WEBHOOK_SECRET_32_BYTES_KEY < body.txt
    """
    key = WebhookSecret(secret)
    plaintext = envelope.decrypt(_read_stdin(), key)
    if raw:
        _write_stdout(plaintext)
        return
    event = parse_event(plaintext)
    if isinstance(event, UnknownEvent):
        typer.echo(f"verihook: note: unknown event type {event.event!r}", err=True)
    _write_stdout(plaintext + b"\n")


@reports_errors
def secret(
    signing: Annotated[
        bool, typer.Option("--signing", help="Make a whsec_ signing secret instead.")
    ] = False,
) -> None:
    """Print a new webhook secret (32 characters of A-Z, a-z, 0-9).

    Example: verihook secret --signing
    """
    new = SigningSecret.generate() if signing else WebhookSecret.generate()
    typer.echo(new.reveal())


@reports_errors
def send(
    url: Annotated[str, typer.Argument(help="Where to POST, http:// or https://.")],
    event: Annotated[EventType, typer.Option("--event", help="Event type.")],
    status: Annotated[Status, typer.Option("--status", help="Verification status.")],
    key: Annotated[
        str | None, typer.Option("--key", help="Verification key, a UUID (default: random).")
    ] = None,
    secret: OptionalSecretOption = None,
    signing_secret: SigningSecretOption = None,
    created: Annotated[
        int | None, typer.Option("--created", help="Unix seconds (default: now).")
    ] = None,
    updated: Annotated[
        int | None, typer.Option("--updated", help="Unix seconds (default: now).")
    ] = None,
    processed: Annotated[
        int | None, typer.Option("--processed", help="Unix seconds (default: now).")
    ] = None,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds to wait.")] = 10.0,
) -> None:
    """POST one test webhook and print the response status and body.

    Encrypted when a secret is given, signed when a signing secret is given.

    Exits 0 on a 2xx answer, 1 otherwise; redirects are not followed.

    Example: verihook send http://127.0.0.1:8000/ --event VERIFICATION_REVIEWED --status approved
    """
    target = _parse_url(url)
    webhook_secret = WebhookSecret(secret) if secret is not None else None
    signing = (SigningSecret(signing_secret),) if signing_secret is not None else ()
    now = int(time.time())
    webhook = WebhookEvent(
        event=event,
        key=key if key is not None else str(uuid.uuid4()),
        status=status,
        created=now if created is None else created,
        updated=now if updated is None else updated,
        processed=now if processed is None else processed,
    )
    headers, body = encode_request(
        webhook,
        secret=webhook_secret,
        signing_secrets=signing,
        msg_id=f"msg_{uuid.uuid4().hex}",
        timestamp=now,
        attempt=1,
    )
    where = _display(target)
    try:
        with httpx.Client(follow_redirects=False, timeout=timeout) as client:
            response = client.post(target, content=body, headers=headers)
    except httpx.TimeoutException:
        fail(f"no answer from {where} within {timeout:g} s")
    except httpx.HTTPError as exc:
        fail(f"could not reach {where}: {exc or type(exc).__name__}")
    typer.echo(f"HTTP {response.status_code} {response.reason_phrase}".rstrip())
    if response.content:
        typer.echo(response.text)
    if not response.is_success:
        fail(f"{where} answered {response.status_code}, not 2xx")


def _parse_url(url: str) -> httpx.URL:
    try:
        target = httpx.URL(url)
    except httpx.InvalidURL:
        fail("URL is not valid")
    if target.scheme not in ("http", "https") or not target.host:
        fail("URL must start with http:// or https:// and name a host")
    return target


def _display(url: httpx.URL) -> str:
    # Without user info or query: either may hold a credential.
    port = f":{url.port}" if url.port is not None else ""
    return f"{url.scheme}://{url.host}{port}{url.path}"
