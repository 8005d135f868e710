"""Options and output shared by the command groups: ``--db``, ``--json``, JSON printing."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
import typer

__all__ = ["DatabaseOption", "JsonOption", "print_json"]

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


def print_json(value: Any) -> None:
    typer.echo(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode("utf-8"))
