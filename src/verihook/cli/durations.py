"""Durations on the command line: one grammar for every option that takes one.

A number (a fraction allowed) and a unit: ``250ms``, ``90s``, ``1.5m``, ``12h``, ``30d``,
``2w``. A bare number means seconds where the option says so (a retry schedule, an overlap);
where a slip would cost data (``inbox prune --older-than 30``: seconds or days?) or the
number means something else (``--since 1700000000``, a unix time), the unit is required.
"""

from __future__ import annotations

import math
import re

from verihook.exceptions import InvalidInput

__all__ = ["parse_duration"]

# ASCII digits only: int() and float() would take other scripts' digits too.
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)?", re.ASCII)
_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}


def parse_duration(text: str, *, bare_seconds: bool = True) -> float:
    """Seconds in ``text``; ``InvalidInput`` (a ValueError) for anything else."""
    match = _DURATION.fullmatch(text.strip().lower())
    if match is not None and (match.group(2) is not None or bare_seconds):
        seconds = float(match.group(1)) * _SECONDS[match.group(2) or "s"]
        if math.isfinite(seconds):  # 400 digits make float() infinite, not an error
            return seconds
    shown = text if len(text) <= 20 else text[:20] + "..."
    raise InvalidInput(f"{shown!r} is not a duration like 90s, 15m, 12h, 30d or 2w")
