"""Schema migrations: numbered steps per domain, applied once, in order, by one process at a time.

Each domain (``inbox``, ``provider``, ...) keeps its own numbering, so the receiver and the
provider can evolve their tables independently in the same database.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from verihook.store.database import Connection, Database

__all__ = ["Migration", "applied_versions", "migrate"]

_LEDGER = """
CREATE TABLE IF NOT EXISTS verihook_migrations (
    domain TEXT NOT NULL,
    version INTEGER NOT NULL,
    name TEXT NOT NULL,
    applied_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (domain, version)
)
"""
# Any constant works; it only has to be the same in every verihook process.
_ADVISORY_LOCK_ID = 0x76657269686F6F6B  # "verihook"


@dataclass(frozen=True, slots=True)
class Migration:
    """One schema step. ``sqlite`` and ``postgres`` hold ``;``-separated statements."""

    domain: str
    version: int
    name: str
    sqlite: str
    postgres: str

    def statements(self, dialect: str) -> list[str]:
        script = self.sqlite if dialect == "sqlite" else self.postgres
        return [s.strip() for s in script.split(";") if s.strip()]


def migrate(database: Database, migrations: Sequence[Migration]) -> list[Migration]:
    """Apply what is missing, each step in its own transaction. Returns the steps applied.

    Domains run in the order they first appear in ``migrations``: list dependencies first.
    """
    applied: list[Migration] = []
    with database.connection() as conn:
        _ensure_ledger(conn)
        for migration in _in_order(migrations):
            with conn.transaction():
                _lock(conn)
                done = conn.one(
                    "SELECT 1 FROM verihook_migrations WHERE domain = ? AND version = ?",
                    (migration.domain, migration.version),
                )
                if done:
                    continue
                for statement in migration.statements(conn.dialect):
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO verihook_migrations (domain, version, name, applied_at)"
                    " VALUES (?, ?, ?, ?)",
                    (migration.domain, migration.version, migration.name, time.time()),
                )
            applied.append(migration)
    return applied


def _in_order(migrations: Sequence[Migration]) -> list[Migration]:
    """Domains in the order given (a later domain may depend on an earlier one's tables),
    each domain's steps by version."""
    domains = list(dict.fromkeys(m.domain for m in migrations))
    return sorted(migrations, key=lambda m: (domains.index(m.domain), m.version))


def applied_versions(database: Database) -> dict[str, int]:
    """The latest applied version of each domain."""
    with database.connection() as conn:
        _ensure_ledger(conn)
        rows = conn.execute("SELECT domain, MAX(version) FROM verihook_migrations GROUP BY domain")
    return {domain: int(version) for domain, version in rows}


def _ensure_ledger(conn: Connection) -> None:
    with conn.transaction():
        _lock(conn)
        conn.execute(_LEDGER)


def _lock(conn: Connection) -> None:
    # SQLite's BEGIN IMMEDIATE already serialises writers; PostgreSQL needs a lock so two
    # workers starting together do not both run the same CREATE TABLE.
    if conn.dialect == "postgres":
        conn.execute("SELECT pg_advisory_xact_lock(?)", (_ADVISORY_LOCK_ID,))
