"""The root ``verihook`` app. Every command group is registered here, and only here.

To add a group: write ``verihook/cli/<group>.py`` with its own ``typer.Typer()`` (or plain
functions), then below either ``app.add_typer(<group>.app, name="<group>")`` or
``app.command()(<group>.<function>)``. Wrap commands with ``errors.reports_errors``.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from verihook._version import __version__
from verihook.cli import format_tools
from verihook.cli.errors import EXIT_REFUSED, one_line
from verihook.exceptions import VerihookError

__all__ = ["app", "main"]

app = typer.Typer(
    name="verihook",
    help="Passbase-compatible identity-verification webhooks, both ends.",
    no_args_is_help=True,
    # A traceback could show locals, secrets among them; main() prints one line instead.
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"verihook {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_show_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Passbase-compatible identity-verification webhooks, both ends.

    Configured by flags or VERIHOOK_* environment variables.
    """


# Format tools (issue 2).
app.command("encrypt")(format_tools.encrypt)
app.command("decrypt")(format_tools.decrypt)
app.command("secret")(format_tools.secret)
app.command("send")(format_tools.send)

# Provider (issue 4, part 1).
from verihook.cli import db, endpoints, verifications  # noqa: E402

app.add_typer(endpoints.app, name="endpoints")
app.add_typer(verifications.app, name="verifications")
app.add_typer(db.app, name="db")

# Receiver (issue 3).
from verihook.cli import inbox, receive  # noqa: E402

app.command("receive")(receive.receive)
app.add_typer(inbox.app, name="inbox")

# Delivery engine (issue 4, part 2).
from verihook.cli import deliveries, worker  # noqa: E402

app.add_typer(deliveries.app, name="deliveries")
app.command("worker")(worker.worker)

# Both ends at once.
from verihook.cli import demo  # noqa: E402

app.command("demo")(demo.demo)


def main() -> None:
    """Entry point of the ``verihook`` script and ``python -m verihook.cli``."""
    try:
        app(prog_name="verihook")
    except VerihookError as exc:
        # A command that forgot @reports_errors still fails in one line.
        typer.echo(f"verihook: error: {one_line(str(exc))}", err=True)
        sys.exit(EXIT_REFUSED)
    except Exception as exc:
        if os.environ.get("VERIHOOK_DEBUG"):
            raise
        # Only the type: an unexpected message could carry anything, a secret included.
        typer.echo(
            f"verihook: error: unexpected {type(exc).__name__}"
            " (set VERIHOOK_DEBUG=1 for a traceback)",
            err=True,
        )
        sys.exit(EXIT_REFUSED)
