"""Storage shared by the receiver and the provider: connections, migrations, group commit."""

from __future__ import annotations

from verihook.store.database import (
    DEFAULT_DATABASE_URL,
    Connection,
    Database,
    IntegrityError,
    open_database,
)
from verihook.store.group_commit import GroupCommitter
from verihook.store.migrations import Migration, applied_versions, migrate

__all__ = [
    "DEFAULT_DATABASE_URL",
    "Connection",
    "Database",
    "GroupCommitter",
    "IntegrityError",
    "Migration",
    "applied_versions",
    "migrate",
    "open_database",
]
