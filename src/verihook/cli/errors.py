"""How a command fails: one line on stderr and exit 1, never a traceback, never a secret.

Wrap a command with ``@reports_errors`` (under ``@app.command()``): every VerihookError it
raises becomes ``verihook: error: <message>``. Our messages never hold a secret or a body.
Usage errors (missing or malformed options) stay click's, with exit code 2.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NoReturn, ParamSpec, TypeVar

import typer

from verihook.exceptions import VerihookError

__all__ = ["EXIT_REFUSED", "EXIT_USAGE", "fail", "one_line", "reports_errors"]

EXIT_REFUSED = 1
EXIT_USAGE = 2

_P = ParamSpec("_P")
_R = TypeVar("_R")


def one_line(message: str) -> str:
    """Collapse a message to one line, so stderr stays greppable."""
    return " ".join(message.split()) or "failed"


def fail(message: str) -> NoReturn:
    """Print ``verihook: error: <message>`` on stderr and exit 1."""
    typer.echo(f"verihook: error: {one_line(message)}", err=True)
    raise typer.Exit(EXIT_REFUSED)


def reports_errors(command: Callable[_P, _R]) -> Callable[_P, _R]:
    """Turn our exceptions raised by ``command`` into a one-line reason and exit 1."""

    @functools.wraps(command)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return command(*args, **kwargs)
        except VerihookError as exc:
            fail(str(exc))

    return wrapper
