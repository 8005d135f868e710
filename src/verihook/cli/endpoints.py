"""``verihook endpoints``: where webhooks go. Secrets are printed once, when they are made."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.table import Table

from verihook.cli.db import open_provider
from verihook.cli.durations import parse_duration
from verihook.cli.errors import reports_errors
from verihook.cli.options import (
    AllowPrivateNetworksOption,
    DatabaseOption,
    JsonOption,
    console,
    print_json,
)
from verihook.exceptions import InvalidInput
from verihook.provider import Endpoint
from verihook.provider.endpoints import (
    ALL_EVENT_TYPES,
    DEFAULT_MAX_IN_FLIGHT,
    UNCHANGED,
    Unchanged,
)
from verihook.store import DEFAULT_DATABASE_URL

__all__ = ["app"]

app = typer.Typer(help="Endpoints that receive webhooks.", no_args_is_help=True)

EndpointId = Annotated[str, typer.Argument(help="Endpoint id (ep_...).", show_default=False)]
_SECRETS_NOTE = "Store these secrets now: they are not shown again."


@app.command("add")
@reports_errors
def add(
    url: Annotated[str, typer.Argument(help="https:// URL that receives POSTs.")],
    secret: Annotated[
        str | None,
        typer.Option(
            "--secret", help="Encryption secret, 32 bytes (default: generated).", show_default=False
        ),
    ] = None,
    no_encryption: Annotated[
        bool, typer.Option("--no-encryption", help="Send plain JSON (still signed).")
    ] = False,
    events: Annotated[
        str | None,
        typer.Option(
            "--events", help="Comma-separated event types (default: all).", show_default=False
        ),
    ] = None,
    retry_schedule: Annotated[
        str | None,
        typer.Option(
            "--retry-schedule",
            help="Comma-separated delays before each attempt, e.g. 0,5s,5m,2h"
            " (default: the standard schedule).",
            show_default=False,
        ),
    ] = None,
    max_in_flight: Annotated[
        int, typer.Option("--max-in-flight", help="Deliveries in flight at once.")
    ] = DEFAULT_MAX_IN_FLIGHT,
    rate_limit: Annotated[
        float | None,
        typer.Option(
            "--rate-limit", help="Requests per second (default: none).", show_default=False
        ),
    ] = None,
    allow_private_networks: AllowPrivateNetworksOption = False,
    db: DatabaseOption = DEFAULT_DATABASE_URL,
    json_: JsonOption = False,
) -> None:
    """Add an endpoint and print it with its secrets (the only time they are shown).

    Example: verihook endpoints add https://example.com/webhooks --events VERIFICATION_REVIEWED
    """
    if secret is not None and no_encryption:
        raise InvalidInput("--secret and --no-encryption cannot be used together")
    schedule = (
        None if retry_schedule is None else [parse_duration(p) for p in retry_schedule.split(",")]
    )
    with open_provider(db, allow_private_networks) as provider:
        endpoint = provider.add_endpoint(
            url,
            events=events,
            secret=secret,
            encryption=not no_encryption,
            retry_schedule=schedule,
            max_in_flight=max_in_flight,
            rate_limit=rate_limit,
        )
    if json_:
        print_json(endpoint.to_dict(reveal=True))
        return
    _print_endpoint(endpoint, reveal=True)
    typer.echo(_SECRETS_NOTE)


@app.command("list")
@reports_errors
def list_(db: DatabaseOption = DEFAULT_DATABASE_URL, json_: JsonOption = False) -> None:
    """List every endpoint (secrets masked)."""
    with open_provider(db) as provider:
        endpoints = provider.list_endpoints()
    if json_:
        print_json([e.to_dict() for e in endpoints])
        return
    table = Table()
    # Ids are what the other commands take: never cut them, whatever the terminal width.
    table.add_column("id", no_wrap=True, min_width=31)
    table.add_column("url", overflow="fold")
    for name in ("events", "state", "encrypted", "created"):
        table.add_column(name)
    for e in endpoints:
        table.add_row(
            e.id,
            e.url,
            _events(e),
            "enabled" if e.enabled else "disabled",
            "yes" if e.encrypted else "no",
            _time(e.created_at),
        )
    console().print(table)


@app.command("show")
@reports_errors
def show(
    endpoint_id: EndpointId, db: DatabaseOption = DEFAULT_DATABASE_URL, json_: JsonOption = False
) -> None:
    """Show one endpoint (secrets masked)."""
    with open_provider(db) as provider:
        endpoint = provider.get_endpoint(endpoint_id)
    if json_:
        print_json(endpoint.to_dict())
        return
    _print_endpoint(endpoint, reveal=False)


@app.command("update")
@reports_errors
def update(
    endpoint_id: EndpointId,
    url: Annotated[
        str | None,
        typer.Option("--url", help="New https:// URL.", show_default=False),
    ] = None,
    events: Annotated[
        str | None,
        typer.Option("--events", help="Comma-separated event types, or 'all'.", show_default=False),
    ] = None,
    retry_schedule: Annotated[
        str | None,
        typer.Option(
            "--retry-schedule",
            help="Comma-separated delays before each attempt, e.g. 0,5s,5m,2h, or 'default'.",
            show_default=False,
        ),
    ] = None,
    max_in_flight: Annotated[
        int | None,
        typer.Option("--max-in-flight", help="Deliveries in flight at once.", show_default=False),
    ] = None,
    rate_limit: Annotated[
        str | None,
        typer.Option("--rate-limit", help="Requests per second, or 'none'.", show_default=False),
    ] = None,
    allow_private_networks: AllowPrivateNetworksOption = False,
    db: DatabaseOption = DEFAULT_DATABASE_URL,
    json_: JsonOption = False,
) -> None:
    """Change an endpoint's settings; its id, secrets and history stay (secrets masked).

    Queued deliveries use the new URL from their next attempt; new events, the new filter.

    Example: verihook endpoints update ep_... --url https://example.com/v2/webhooks --rate-limit 5
    """
    options = (url, events, retry_schedule, max_in_flight, rate_limit)
    if all(option is None for option in options):
        raise InvalidInput(
            "nothing to change: give --url, --events, --retry-schedule, --max-in-flight"
            " or --rate-limit"
        )
    chosen_events = (
        [e.value for e in ALL_EVENT_TYPES]
        if events is not None and events.strip().lower() == "all"
        else events
    )
    schedule: list[float] | Unchanged | None = UNCHANGED
    if retry_schedule is not None:
        schedule = (
            None
            if retry_schedule.strip().lower() == "default"
            else [parse_duration(p) for p in retry_schedule.split(",")]
        )
    limit: float | Unchanged | None = UNCHANGED
    if rate_limit is not None:
        limit = None if rate_limit.strip().lower() == "none" else _parse_rate(rate_limit)
    with open_provider(db, allow_private_networks) as provider:
        endpoint = provider.update_endpoint(
            endpoint_id,
            url=url,
            events=chosen_events,
            retry_schedule=schedule,
            max_in_flight=max_in_flight,
            rate_limit=limit,
        )
    if json_:
        print_json(endpoint.to_dict())
        return
    _print_endpoint(endpoint, reveal=False)


@app.command("enable")
@reports_errors
def enable(
    endpoint_id: EndpointId, db: DatabaseOption = DEFAULT_DATABASE_URL, json_: JsonOption = False
) -> None:
    """Enable an endpoint: new events are queued for it again, its failure record is reset."""
    with open_provider(db) as provider:
        endpoint = provider.enable_endpoint(endpoint_id)
    if json_:
        print_json(endpoint.to_dict())
        return
    typer.echo(f"endpoint {endpoint.id} enabled")


@app.command("disable")
@reports_errors
def disable(
    endpoint_id: EndpointId,
    reason: Annotated[
        str, typer.Option("--reason", help="Why, shown by 'show'.")
    ] = "disabled by operator",
    db: DatabaseOption = DEFAULT_DATABASE_URL,
    json_: JsonOption = False,
) -> None:
    """Disable an endpoint: new events are no longer queued for it."""
    with open_provider(db) as provider:
        endpoint = provider.disable_endpoint(endpoint_id, reason)
    if json_:
        print_json(endpoint.to_dict())
        return
    typer.echo(f"endpoint {endpoint.id} disabled")


@app.command("rotate-secret")
@reports_errors
def rotate_secret(
    endpoint_id: EndpointId,
    overlap: Annotated[
        str,
        typer.Option(
            "--overlap",
            help="How long the previous signing secret keeps signing, e.g. 24h, 30m, 0.",
        ),
    ] = "24h",
    encryption: Annotated[
        bool, typer.Option("--encryption", help="Also replace the encryption secret (no overlap).")
    ] = False,
    secret: Annotated[
        str | None,
        typer.Option(
            "--secret",
            help="The new encryption secret (with --encryption; default: generated).",
            show_default=False,
        ),
    ] = None,
    db: DatabaseOption = DEFAULT_DATABASE_URL,
    json_: JsonOption = False,
) -> None:
    """Make a new signing secret (and optionally encryption secret) and print it, once.

    Example: verihook endpoints rotate-secret ep_... --overlap 48h
    """
    with open_provider(db) as provider:
        endpoint = provider.rotate_secret(
            endpoint_id,
            overlap=parse_duration(overlap),
            rotate_encryption=encryption,
            encryption_secret=secret,
        )
    shown = endpoint.to_dict(reveal=True)
    if not encryption:
        # Only what changed is shown again.
        shown["encryption_secret"] = endpoint.to_dict()["encryption_secret"]
    if json_:
        print_json(shown)
        return
    _print_endpoint(endpoint, reveal=True, reveal_encryption=encryption)
    typer.echo(_SECRETS_NOTE)


def _parse_rate(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        shown = text if len(text) <= 20 else text[:20] + "..."
        raise typer.BadParameter(
            f"{shown!r} is not a number of requests per second or 'none'",
            param_hint="'--rate-limit'",
        ) from None


def _events(endpoint: Endpoint) -> str:
    if len(endpoint.event_types) == 2:
        return "all"
    return ",".join(e.value for e in endpoint.event_types)


def _time(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _print_endpoint(endpoint: Endpoint, *, reveal: bool, reveal_encryption: bool = True) -> None:
    data = endpoint.to_dict(reveal=reveal)
    if not reveal_encryption:
        data["encryption_secret"] = endpoint.to_dict()["encryption_secret"]
    rows = [
        ("id", endpoint.id),
        ("url", endpoint.url),
        ("events", ",".join(data["events"])),
        ("state", "enabled" if endpoint.enabled else f"disabled ({endpoint.disabled_reason})"),
        ("encryption secret", data["encryption_secret"] or "none (plain JSON)"),
        ("signing secret", data["signing_secret"]),
    ]
    if endpoint.previous_signing_secret is not None:
        rows.append(("previous secret signs until", _time(endpoint.previous_signing_secret_until)))
    schedule = endpoint.retry_schedule
    rows += [
        (
            "retry schedule",
            "default" if schedule is None else ",".join(f"{d:g}s" for d in schedule),
        ),
        ("max in flight", str(endpoint.max_in_flight)),
        ("rate limit", "none" if endpoint.rate_limit is None else f"{endpoint.rate_limit:g}/s"),
        ("created", _time(endpoint.created_at)),
    ]
    # Plain lines, not a table: a secret must never be wrapped or cut by the terminal width.
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        typer.echo(f"{name + ':':<{width + 1}} {value}")
