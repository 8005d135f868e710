"""``verihook inbox failed|retry|prune``: the receiver's handler runs that gave up, and cleanup.

These act on the store only. A running ``verihook receive`` (or any started ``Receiver``)
polls the store about once a second, so a run marked due here is picked up there.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.table import Table

from verihook.cli.durations import parse_duration
from verihook.cli.errors import reports_errors
from verihook.cli.options import DatabaseOption, JsonOption, console, print_json
from verihook.exceptions import InvalidInput
from verihook.receiver import Receiver
from verihook.store import DEFAULT_DATABASE_URL

__all__ = ["app"]

app = typer.Typer(
    help="The receiver's inbox: failed handler runs, retries, pruning.", no_args_is_help=True
)


@contextmanager
def _receiver(db: str) -> Iterator[Receiver]:
    # No secret, no handlers, no dispatcher: only the store, migrated if it is new.
    receiver = Receiver(database_url=db)
    try:
        yield receiver
    finally:
        receiver.stop()


def _time(value: float) -> str:
    return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


@app.command("failed")
@reports_errors
def failed(
    limit: Annotated[
        int, typer.Option("--limit", min=1, help="At most this many, latest failure first.")
    ] = 100,
    db: DatabaseOption = DEFAULT_DATABASE_URL,
    json_: JsonOption = False,
) -> None:
    """List handler runs that gave up after their retries, latest failure first.

    Example: verihook inbox failed --db sqlite:///receiver.db
    """
    with _receiver(db) as receiver:
        runs = receiver.failed_runs(limit=limit)
    if json_:
        print_json([run.to_dict() for run in runs])
        return
    table = Table()
    table.add_column("event", justify="right", no_wrap=True)
    table.add_column("handler", no_wrap=True)
    table.add_column("attempts", justify="right")
    table.add_column("last error")
    table.add_column("failed at (UTC)", no_wrap=True)
    for run in runs:
        table.add_row(
            str(run.event_seq),
            run.handler,
            str(run.attempts),
            run.last_error or "",
            _time(run.updated_at),
        )
    console().print(table)


@app.command("retry")
@reports_errors
def retry(
    event_seq: Annotated[
        int | None,
        typer.Argument(
            metavar="SEQ", help="The event's number (see 'failed').", show_default=False
        ),
    ] = None,
    handler: Annotated[
        str | None,
        typer.Argument(metavar="HANDLER", help="The handler's name.", show_default=False),
    ] = None,
    all_failed: Annotated[
        bool, typer.Option("--all-failed", help="Retry every failed run.")
    ] = False,
    db: DatabaseOption = DEFAULT_DATABASE_URL,
    json_: JsonOption = False,
) -> None:
    """Make failed handler runs due again now, with a fresh count of attempts.

    A running receiver (verihook receive, or a started Receiver) on the same store runs them
    within about a second.

    Examples: verihook inbox retry 42 on:VERIFICATION_REVIEWED:app.reviewed;
    verihook inbox retry --all-failed
    """
    # Usage errors (exit 2), as click's own: typer exports BadParameter, not UsageError.
    hint = "'SEQ HANDLER' / '--all-failed'"
    if all_failed == (event_seq is not None or handler is not None):
        raise typer.BadParameter("give either SEQ HANDLER or --all-failed", param_hint=hint)
    if not all_failed and (event_seq is None or handler is None):
        raise typer.BadParameter("give both SEQ and HANDLER", param_hint=hint)
    with _receiver(db) as receiver:
        if all_failed:
            count = receiver.retry_all_failed()
        else:
            assert event_seq is not None and handler is not None
            receiver.retry(event_seq, handler)
            count = 1
    if json_:
        print_json({"queued": count})
        return
    typer.echo(f"queued {_plural(count, 'failed run')} again")


def _duration(value: str) -> int:
    try:
        return int(parse_duration(value, bare_seconds=False))
    except InvalidInput as exc:
        raise typer.BadParameter(str(exc)) from None


@app.command("prune")
@reports_errors
def prune(
    older_than: Annotated[
        int,
        typer.Option(
            "--older-than",
            metavar="DURATION",
            parser=_duration,
            help="Delete events received longer ago than this: 90s, 15m, 12h, 30d, 2w.",
            show_default=False,
        ),
    ],
    include_failed: Annotated[
        bool,
        typer.Option("--include-failed", help="Delete events with failed runs too."),
    ] = False,
    db: DatabaseOption = DEFAULT_DATABASE_URL,
    json_: JsonOption = False,
) -> None:
    """Delete old events whose handler runs all succeeded, with their runs, in one transaction.

    Events with a run still pending are always kept, and so are those with a failed run
    unless --include-failed. Verification states are kept: they are the state, not its
    history. A duplicate of a pruned event arriving later is stored again, runs its event
    handlers again, but changes no state.

    Example: verihook inbox prune --older-than 30d
    """
    with _receiver(db) as receiver:
        count = receiver.prune(older_than, include_failed=include_failed)
    if json_:
        print_json({"pruned": count})
        return
    typer.echo(f"pruned {_plural(count, 'event')}")
