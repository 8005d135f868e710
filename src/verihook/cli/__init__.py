"""The ``verihook`` command line: a typer app, one module per command group."""

from __future__ import annotations
