"""``verihook deliveries list|show|replay|recover``: look at the queue and act on it.

``replay`` queues a new delivery of the same event (same ``webhook-id``, so receivers
deduplicate) rather than resetting the old one, which keeps its history of attempts.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from verihook.cli.durations import parse_duration
from verihook.cli.errors import fail, reports_errors
from verihook.cli.options import DatabaseOption, JsonOption, console, print_json
from verihook.delivery import DELIVERY_MIGRATIONS
from verihook.delivery import queue as q
from verihook.exceptions import InvalidInput
from verihook.store import DEFAULT_DATABASE_URL, Connection, Database, migrate, open_database
from verihook.store.provider_schema import PROVIDER_MIGRATIONS

__all__ = ["app", "parse_since"]

app = typer.Typer(help="The delivery queue: list, show, replay, recover.", no_args_is_help=True)


def _open(db: str) -> Database:
    database = open_database(db)
    migrate(database, [*PROVIDER_MIGRATIONS, *DELIVERY_MIGRATIONS])
    return database


def _time(value: float | None) -> str:
    if value is None:
        return ""
    return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%d %H:%M:%S")


def parse_since(value: str, now: float) -> float:
    """Unix seconds, an ISO 8601 time (UTC unless it says otherwise), or a duration ago:
    ``90s``, ``15m``, ``1.5h``, ``2d`` (cli/durations.py)."""
    text = value.strip()
    try:
        return now - parse_duration(text, bare_seconds=False)
    except InvalidInput:
        pass  # a time, then
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        if seconds == seconds and 0 <= seconds < 1e11:  # not NaN, a plausible unix time
            return seconds
        raise InvalidInput("--since must be a time: unix seconds, ISO 8601, or 15m/6h/2d ago")
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(
            "--since must be a time: unix seconds, ISO 8601, or 15m/6h/2d ago"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


@app.command("list")
@reports_errors
def list_(
    state: Annotated[
        str | None, typer.Option("--state", help="pending, succeeded or failed.")
    ] = None,
    endpoint: Annotated[str | None, typer.Option("--endpoint", help="An endpoint id.")] = None,
    event: Annotated[str | None, typer.Option("--event", help="An event id (msg_...).")] = None,
    limit: Annotated[int, typer.Option("--limit", help="At most this many, newest first.")] = 50,
    db: DatabaseOption = DEFAULT_DATABASE_URL,
    json_: JsonOption = False,
) -> None:
    """List deliveries, newest first."""
    database = _open(db)
    with database.connection() as conn:
        rows = q.list_deliveries(
            conn, time.time(), state=state, endpoint_id=endpoint, event_id=event, limit=limit
        )
    if json_:
        print_json([r.to_dict() for r in rows])
        return
    table = Table()
    table.add_column("id", no_wrap=True, min_width=32)
    table.add_column("endpoint", no_wrap=True)
    for name in ("event", "state", "attempts", "last", "next / done"):
        table.add_column(name)
    for r in rows:
        state_text = "in flight" if r.leased else r.state
        last = str(r.last_status_code) if r.last_status_code is not None else (r.last_error or "")
        when = _time(r.completed_at if r.state != "pending" else r.next_attempt_at)
        table.add_row(r.id, r.endpoint_id, r.event_type, state_text, str(r.attempts), last, when)
    console().print(table)


@app.command("show")
@reports_errors
def show(
    delivery_id: Annotated[str, typer.Argument(help="The delivery id (dlv_...).")],
    db: DatabaseOption = DEFAULT_DATABASE_URL,
    json_: JsonOption = False,
) -> None:
    """Show one delivery with every attempt (status, latency, error, start of the response)."""
    database = _open(db)
    with database.connection() as conn:
        delivery, attempts = q.get_delivery(conn, delivery_id, time.time())
    if json_:
        print_json({**delivery.to_dict(), "attempts": [a.to_dict() for a in attempts]})
        return
    out = console()
    info = Table.grid(padding=(0, 2))
    for key, value in delivery.to_dict().items():
        if key.endswith("_at") and value is not None:
            value = _time(value)
        info.add_row(key, "" if value is None else str(value))
    out.print(info)
    table = Table(title="attempts")
    for name in ("#", "started", "ms", "status", "outcome", "error", "response"):
        table.add_column(name)
    for a in attempts:
        table.add_row(
            str(a.number),
            _time(a.started_at),
            f"{a.latency_ms:.1f}" if a.latency_ms is not None else "",
            str(a.status_code or ""),
            a.outcome,
            a.error or "",
            (a.response_body or "")[:80],
        )
    out.print(table)


@app.command("replay")
@reports_errors
def replay(
    delivery_id: Annotated[
        str | None, typer.Argument(help="A finished delivery to send again.", show_default=False)
    ] = None,
    endpoint: Annotated[
        str | None, typer.Option("--endpoint", help="Replay this endpoint's failed deliveries.")
    ] = None,
    since: Annotated[
        str | None,
        typer.Option("--since", help="With --endpoint: failed at or after this time (e.g. 6h)."),
    ] = None,
    db: DatabaseOption = DEFAULT_DATABASE_URL,
    json_: JsonOption = False,
) -> None:
    """Send one delivery again, or every failed delivery of an endpoint since a time.

    Examples: verihook deliveries replay dlv_...;
    verihook deliveries replay --endpoint ep_... --since 24h
    """
    if (delivery_id is None) == (endpoint is None):
        fail("give either a delivery id or --endpoint (with --since)")
    if delivery_id is not None and since is not None:
        fail("--since goes with --endpoint")
    now = time.time()
    database = _open(db)
    with database.connection() as conn, conn.transaction():
        if delivery_id is not None:
            created = [q.replay_delivery(conn, delivery_id, now)]
        else:
            assert endpoint is not None
            start = parse_since(since, now) if since is not None else 0.0
            created = q.replay_failed(conn, endpoint, start, now)
    if json_:
        print_json({"queued": created})
        return
    typer.echo(f"queued {len(created)} deliver{'y' if len(created) == 1 else 'ies'}")
    for new_id in created:
        typer.echo(new_id)


@app.command("recover")
@reports_errors
def recover(
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Also take back leases that have not expired: only when no worker runs.",
        ),
    ] = False,
    db: DatabaseOption = DEFAULT_DATABASE_URL,
    json_: JsonOption = False,
) -> None:
    """Requeue deliveries held by workers that died (expired leases), due at once.

    Workers do this by themselves when a lease runs out; this makes it happen now.
    """
    database = _open(db)
    now = time.time()
    with database.connection() as conn:
        total = q.count_recoverable(conn, now, force=force)
        done = 0
        if json_ or total == 0:
            done = _recover_all(conn, now, force)
        else:
            with Progress(
                TextColumn("recovering"), BarColumn(), MofNCompleteColumn(), transient=True
            ) as progress:
                task = progress.add_task("recover", total=total)
                done = _recover_all(conn, now, force, lambda n: progress.advance(task, n))
    if json_:
        print_json({"requeued": done})
        return
    typer.echo(f"requeued {done} deliver{'y' if done == 1 else 'ies'}")


def _recover_all(conn: Connection, now: float, force: bool, step: Any = None) -> int:
    done = 0
    while True:
        with conn.transaction():
            n = q.recover(conn, now, force=force)
        if n == 0:
            return done
        done += n
        if step is not None:
            step(n)
