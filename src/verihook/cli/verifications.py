"""``verihook verifications``: the lifecycle by hand, and the automation thresholds."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from verihook.cli.db import open_provider
from verihook.cli.errors import reports_errors
from verihook.cli.options import DatabaseOption, JsonOption, console, print_json
from verihook.exceptions import InvalidInput
from verihook.provider import Decision, Stage, Thresholds, Verification
from verihook.store import DEFAULT_DATABASE_URL

__all__ = ["app"]

app = typer.Typer(help="Verifications and the automation thresholds.", no_args_is_help=True)

Key = Annotated[str, typer.Argument(help="Verification key (a UUID).", show_default=False)]


@app.command("create")
@reports_errors
def create(
    key: Annotated[
        str | None, typer.Argument(help="Key, a UUID (default: random).", show_default=False)
    ] = None,
    db: DatabaseOption = DEFAULT_DATABASE_URL,
    json_: JsonOption = False,
) -> None:
    """Create a verification (no event is sent until it completes)."""
    with open_provider(db) as provider:
        verification = provider.create_verification(key)
    _print(verification, json_)


@app.command("complete")
@reports_errors
def complete(
    key: Key,
    score: Annotated[float, typer.Option("--score", help="Between 0 and 1.", show_default=False)],
    db: DatabaseOption = DEFAULT_DATABASE_URL,
    json_: JsonOption = False,
) -> None:
    """Complete a verification with a score; thresholds may decide it at once.

    Example: verihook verifications complete 0b5e2a3c-9f1d-4e8a-b7c6-1d2e3f4a5b6c --score 0.93
    """
    with open_provider(db) as provider:
        verification = provider.complete(key, score)
    _print(verification, json_)


@app.command("review")
@reports_errors
def review(
    key: Key,
    decision: Annotated[Decision, typer.Argument(help="approve or decline.", show_default=False)],
    db: DatabaseOption = DEFAULT_DATABASE_URL,
    json_: JsonOption = False,
) -> None:
    """Review a completed, pending verification: approve or decline."""
    with open_provider(db) as provider:
        verification = provider.review(key, decision)
    _print(verification, json_)


@app.command("show")
@reports_errors
def show(key: Key, db: DatabaseOption = DEFAULT_DATABASE_URL, json_: JsonOption = False) -> None:
    """Show a verification and the events it caused, with their deliveries by state."""
    with open_provider(db) as provider:
        verification = provider.get_verification(key)
        events = provider.verification_events(key)
    if json_:
        print_json({**verification.to_dict(), "events": events})
        return
    _print(verification, False)
    if events:
        table = Table()
        table.add_column("event id", no_wrap=True, min_width=32)
        for name in ("event", "status", "deliveries"):
            table.add_column(name)
        for e in events:
            counts = ", ".join(f"{n} {state}" for state, n in sorted(e["deliveries"].items()))
            table.add_row(e["id"], e["event"], e["payload"]["status"], counts or "none")
        console().print(table)


@app.command("list")
@reports_errors
def list_(
    stage: Annotated[
        Stage | None, typer.Option("--stage", help="Only this stage.", show_default=False)
    ] = None,
    limit: Annotated[int, typer.Option("--limit", help="At most this many, newest first.")] = 100,
    db: DatabaseOption = DEFAULT_DATABASE_URL,
    json_: JsonOption = False,
) -> None:
    """List verifications, newest first."""
    with open_provider(db) as provider:
        verifications = provider.list_verifications(stage, limit)
    if json_:
        print_json([v.to_dict() for v in verifications])
        return
    table = Table()
    # Keys are what the other commands take: never cut them, whatever the terminal width.
    table.add_column("key", no_wrap=True, min_width=36)
    for name in ("stage", "status", "score", "updated"):
        table.add_column(name)
    for v in verifications:
        table.add_row(v.key, v.stage.value, v.status.value, _score(v), str(v.updated))
    console().print(table)


@app.command("thresholds")
@reports_errors
def thresholds(
    approve: Annotated[
        float | None,
        typer.Option("--approve", help="Approve scores >= this.", show_default=False),
    ] = None,
    decline: Annotated[
        float | None,
        typer.Option("--decline", help="Decline scores < this.", show_default=False),
    ] = None,
    off: Annotated[
        bool, typer.Option("--off", help="Every completion waits for a review.")
    ] = False,
    db: DatabaseOption = DEFAULT_DATABASE_URL,
    json_: JsonOption = False,
) -> None:
    """Show or set the automation thresholds. Without options, show them.

    Example: verihook verifications thresholds --approve 0.9 --decline 0.2
    """
    if off and (approve is not None or decline is not None):
        raise InvalidInput("--off cannot be combined with --approve or --decline")
    with open_provider(db) as provider:
        if off or approve is not None or decline is not None:
            current = provider.set_thresholds(approve, decline)
        else:
            current = provider.get_thresholds()
    if json_:
        print_json(current.to_dict())
        return
    typer.echo(_describe(current))


def _describe(t: Thresholds) -> str:
    if t.is_off:
        return "thresholds: off (every completion waits for a manual review)"
    parts = []
    if t.approve is not None:
        parts.append(f"approve score >= {t.approve:g}")
    if t.decline is not None:
        parts.append(f"decline score < {t.decline:g}")
    return "thresholds: " + ", ".join(parts)


def _score(v: Verification) -> str:
    return "-" if v.score is None else f"{v.score:g}"


def _print(verification: Verification, as_json: bool) -> None:
    data: dict[str, Any] = verification.to_dict()
    if as_json:
        print_json(data)
        return
    for name in ("key", "stage", "status"):
        typer.echo(f"{name + ':':<7} {data[name]}")
    typer.echo(f"{'score:':<7} {_score(verification)}")
