"""A small pool of the store's sync connections, shared by the threads of one Provider.

Opening a PostgreSQL connection costs milliseconds; reusing one per call keeps a scripted
loop of thousands of state changes fast. A connection that failed is dropped, never reused.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from verihook.exceptions import StoreUnavailable, VerihookError
from verihook.store import Connection, Database

__all__ = ["ConnectionPool"]


class ConnectionPool:
    def __init__(self, database: Database, max_idle: int = 8) -> None:
        self.database = database
        self._idle: list[Connection] = []
        self._lock = threading.Lock()
        self._max_idle = max_idle
        self._closed = False

    @contextmanager
    def connection(self) -> Iterator[Connection]:
        with self._lock:
            conn = self._idle.pop() if self._idle else None
        if conn is None:
            conn = self.database.connect()
        try:
            yield conn
        except VerihookError as exc:
            # A refused action rolled its transaction back: the connection is clean. An
            # outage or anything unexpected may have left it broken: drop it.
            if isinstance(exc, StoreUnavailable):
                conn.close()
            else:
                self._release(conn)
            raise
        except BaseException:
            conn.close()
            raise
        self._release(conn)

    def _release(self, conn: Connection) -> None:
        with self._lock:
            if not self._closed and len(self._idle) < self._max_idle:
                self._idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
