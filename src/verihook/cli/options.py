"""Options and output shared by the command groups: ``--db``, ``--json``, tables, JSON."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console

__all__ = [
    "AllowPrivateNetworksOption",
    "DatabaseOption",
    "JsonOption",
    "console",
    "print_json",
]

# Without a terminal rich assumes 80 columns and squeezes a table of ids until some columns
# are zero wide; piped output gets room enough for the widest table instead.
_PIPED_WIDTH = 200

DatabaseOption = Annotated[
    str,
    typer.Option(
        "--db",
        envvar="VERIHOOK_DATABASE_URL",
        help="Database URL: sqlite:///path.db or postgresql://...",
        show_envvar=True,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON, for scripts.")]
AllowPrivateNetworksOption = Annotated[
    bool,
    typer.Option(
        "--allow-private-networks",
        envvar="VERIHOOK_ALLOW_PRIVATE_NETWORKS",
        help="Allow http and loopback/private addresses (development and tests).",
    ),
]


def print_json(value: Any) -> None:
    typer.echo(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode("utf-8"))


def console() -> Console:
    """A console for tables: the terminal's width, or a wide one when output is piped."""
    return Console() if sys.stdout.isatty() else Console(width=_PIPED_WIDTH)
