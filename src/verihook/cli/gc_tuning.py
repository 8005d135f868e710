"""Garbage collection for the CLI's long-running processes (``worker``, ``receive``).

Measured (benchmarks/RESULTS.md): with CPython's defaults the collector took ~30 us per
delivery in ``verihook worker``, 10% of its CPU, where a bare sender loop spends 0.3 us. Each
claim starts a wave of attempts whose objects outnumber the young generation's threshold
(700), so nearly every claim triggered a collection, and the survivors (work in flight) soon
triggered full ones, each walking the ~60,000 objects of the imports. In ``verihook receive``
the same full collections showed as latency: p99 29-31 ms instead of 35-38 under load.

The start-up heap is frozen (never collected, never walked again) and the young generation
given room for a few waves. Little here is cyclic garbage: memory is freed by reference
counting all the same. Only our own processes are tuned; a ``Worker`` or ``Receiver`` in an
application's process leaves the application's collector alone.
"""

from __future__ import annotations

import gc

__all__ = ["tune_gc_for_serving"]


def tune_gc_for_serving() -> None:
    """Call once, after start-up's imports and set-up, before serving."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)
