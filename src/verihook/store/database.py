"""Opening a database by URL: SQLite (the embedded default) or PostgreSQL.

Both backends hand out a ``Connection`` with one small interface. SQL is written once with
``?`` placeholders; the PostgreSQL connection rewrites them to ``%s``. Where the dialects
really differ, callers branch on ``connection.dialect``. Driver errors that mean "the store
is not there" become ``StoreUnavailable`` at this edge, with the driver error as ``__cause__``.
"""

from __future__ import annotations

import abc
import re
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from verihook.exceptions import InvalidInput, StoreUnavailable

__all__ = [
    "DEFAULT_DATABASE_URL",
    "Connection",
    "Database",
    "Dialect",
    "IntegrityError",
    "PostgresDatabase",
    "Row",
    "SqliteDatabase",
    "open_database",
]

DEFAULT_DATABASE_URL = "sqlite:///verihook.db"

Dialect = Literal["sqlite", "postgres"]
Row = tuple[Any, ...]
Params = Sequence[Any] | Mapping[str, Any]


class IntegrityError(Exception):
    """A constraint was violated (unique key, foreign key). Not a store outage."""


class Connection(abc.ABC):
    """One database session. Not thread-safe: one thread (or one writer) uses it at a time."""

    dialect: Dialect

    @abc.abstractmethod
    def execute(self, sql: str, params: Params = ()) -> list[Row]:
        """Run one statement; return its rows (empty for statements that return none)."""

    @abc.abstractmethod
    def executemany(self, sql: str, rows: Iterable[Params]) -> None: ...

    @abc.abstractmethod
    def rowcount(self, sql: str, params: Params = ()) -> int:
        """Run one statement and return how many rows it changed."""

    @abc.abstractmethod
    @contextmanager
    def transaction(self) -> Iterator[None]:
        """A write transaction: committed on exit, rolled back on an exception."""

    @abc.abstractmethod
    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """A nested transaction inside ``transaction()``: one job of a batch can fail alone."""

    @abc.abstractmethod
    def close(self) -> None: ...

    def one(self, sql: str, params: Params = ()) -> Row | None:
        rows = self.execute(sql, params)
        return rows[0] if rows else None

    def scalar(self, sql: str, params: Params = ()) -> Any:
        row = self.one(sql, params)
        return None if row is None else row[0]


class Database(abc.ABC):
    """A store's location. ``connect()`` opens a new connection; each thread opens its own."""

    dialect: Dialect

    def __init__(self, url: str) -> None:
        self.url = url

    @abc.abstractmethod
    def connect(self) -> Connection: ...

    @contextmanager
    def connection(self) -> Iterator[Connection]:
        conn = self.connect()
        try:
            yield conn
        finally:
            conn.close()

    @property
    def safe_url(self) -> str:
        """The URL with any password masked, for logs and messages."""
        parts = urlsplit(self.url)
        if parts.password:
            return self.url.replace(f":{parts.password}@", ":***@", 1)
        return self.url


def open_database(url: str) -> Database:
    """``sqlite:///relative.db``, ``sqlite:////absolute.db`` or ``postgresql://...``."""
    scheme = url.partition(":")[0].lower()
    if scheme == "sqlite":
        return SqliteDatabase(url)
    if scheme in ("postgresql", "postgres"):
        return PostgresDatabase(url)
    raise InvalidInput("database URL must start with sqlite:/// or postgresql://")


# --- SQLite -------------------------------------------------------------------------------


class SqliteDatabase(Database):
    dialect: Dialect = "sqlite"

    def __init__(self, url: str) -> None:
        super().__init__(url)
        if not url.startswith("sqlite:///"):
            raise InvalidInput("SQLite URL must look like sqlite:///path/to/file.db")
        path = url[len("sqlite:///") :]
        if not path or path.startswith(":memory:"):
            # Every connection would see its own empty database.
            raise InvalidInput("SQLite URL must name a file; in-memory databases are not shared")
        self.path = Path(path)

    def connect(self) -> Connection:
        try:
            raw = sqlite3.connect(
                self.path,
                timeout=10.0,
                isolation_level=None,
                check_same_thread=False,
                # Batch statements vary with the batch size: the default 128 thrashes.
                cached_statements=1024,
            )
            # WAL: readers never block the writer. synchronous=FULL: a commit is on disk
            # before we answer, which is what "durably stored" promises.
            _enter_wal_mode(raw, deadline=time.monotonic() + 10.0)
            raw.execute("PRAGMA synchronous=FULL")
            raw.execute("PRAGMA foreign_keys=ON")
            raw.execute("PRAGMA busy_timeout=10000")
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"cannot open SQLite database {self.path}: {exc}") from exc
        return _SqliteConnection(raw)


def _enter_wal_mode(raw: sqlite3.Connection, deadline: float) -> None:
    # Switching a new file to WAL needs an exclusive lock, and SQLite answers "database is
    # locked" at once (the busy handler is not consulted) while another connection holds any
    # lock: several processes opening a fresh database together all race here.
    delay = 0.001
    while True:
        try:
            raw.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


class _SqliteConnection(Connection):
    dialect: Dialect = "sqlite"

    def __init__(self, raw: sqlite3.Connection) -> None:
        self.raw = raw
        self._depth = 0

    def execute(self, sql: str, params: Params = ()) -> list[Row]:
        with _sqlite_errors():
            return self.raw.execute(sql, params).fetchall()

    def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        with _sqlite_errors():
            self.raw.executemany(sql, rows)

    def rowcount(self, sql: str, params: Params = ()) -> int:
        with _sqlite_errors():
            return self.raw.execute(sql, params).rowcount

    @contextmanager
    def transaction(self) -> Iterator[None]:
        # IMMEDIATE takes the write lock up front, so two writers queue on busy_timeout
        # instead of failing later with "database is locked" on upgrade.
        with _sqlite_errors():
            self.raw.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            if self.raw.in_transaction:
                self.raw.execute("ROLLBACK")
            raise
        with _sqlite_errors():
            self.raw.execute("COMMIT")

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        self._depth += 1
        name = f"sp{self._depth}"
        try:
            with _sqlite_errors():
                self.raw.execute(f"SAVEPOINT {name}")
            try:
                yield
            except BaseException:
                self.raw.execute(f"ROLLBACK TO {name}")
                self.raw.execute(f"RELEASE {name}")
                raise
            with _sqlite_errors():
                self.raw.execute(f"RELEASE {name}")
        finally:
            self._depth -= 1

    def close(self) -> None:
        self.raw.close()


@contextmanager
def _sqlite_errors() -> Iterator[None]:
    try:
        yield
    except sqlite3.IntegrityError as exc:
        raise IntegrityError(str(exc)) from exc
    except (sqlite3.OperationalError, sqlite3.DatabaseError) as exc:
        # Disk full, read-only file, I/O error, lock timeout: the sender should retry later.
        raise StoreUnavailable(f"SQLite store unavailable: {exc}") from exc


# --- PostgreSQL ---------------------------------------------------------------------------


class PostgresDatabase(Database):
    dialect: Dialect = "postgres"

    def connect(self) -> Connection:
        import psycopg  # imported here: SQLite-only users need not install the driver

        try:
            raw = psycopg.connect(self.url, autocommit=True, connect_timeout=10)
        except psycopg.Error as exc:
            raise StoreUnavailable(
                f"cannot connect to PostgreSQL at {self.safe_url}: {_first_line(exc)}"
            ) from exc
        return _PostgresConnection(raw)


class _PostgresConnection(Connection):
    dialect: Dialect = "postgres"

    def __init__(self, raw: Any) -> None:
        self.raw = raw
        self._depth = 0

    def execute(self, sql: str, params: Params = ()) -> list[Row]:
        with _postgres_errors():
            if not params:
                # Without parameters psycopg sends the text as it is: no rewrite.
                cursor = self.raw.execute(sql)
            else:
                cursor = self.raw.execute(_to_pyformat(sql), params)
            return cursor.fetchall() if cursor.description is not None else []

    def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        batch = list(rows)
        if len(batch) == 1:
            # psycopg runs executemany in pipeline mode, whose set-up and sync cost more
            # than the one statement (one attempt's record, one event's state, say).
            self.execute(sql, batch[0])
            return
        with _postgres_errors(), self.raw.cursor() as cursor:
            cursor.executemany(_to_pyformat(sql), batch)

    def rowcount(self, sql: str, params: Params = ()) -> int:
        with _postgres_errors():
            query = _to_pyformat(sql) if params else sql
            return int(self.raw.execute(query, params or None).rowcount)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with _postgres_errors(), self.raw.transaction():
            yield

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        # psycopg's transaction() nests as a savepoint inside an open transaction.
        with _postgres_errors(), self.raw.transaction():
            yield

    def close(self) -> None:
        self.raw.close()


@contextmanager
def _postgres_errors() -> Iterator[None]:
    import psycopg

    try:
        yield
    except psycopg.errors.IntegrityError as exc:
        raise IntegrityError(_first_line(exc)) from exc
    except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
        raise StoreUnavailable(f"PostgreSQL store unavailable: {_first_line(exc)}") from exc


_QMARK = re.compile(r"\?")


@lru_cache(maxsize=1024)
def _to_pyformat(sql: str) -> str:
    # Our SQL never holds a literal '?' or '%' in a string, so the rewrite is plain.
    return _QMARK.sub("%s", sql.replace("%", "%%"))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
