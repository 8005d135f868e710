"""Every domain's migrations, for ``verihook db upgrade`` and ``Provider.migrate()``.

Each domain's module is imported defensively: a domain not yet built (or not installed) is
simply absent, and the others still migrate. Domains are applied in dependency order: the
delivery domain may index the provider's tables.
"""

from __future__ import annotations

import importlib

from verihook.store.database import Database
from verihook.store.migrations import Migration, migrate

__all__ = ["all_migrations", "migrate_all"]

# (module, attribute) of each domain's migration list, dependencies first.
_SOURCES = (
    ("verihook.store.provider_schema", "PROVIDER_MIGRATIONS"),
    ("verihook.delivery", "DELIVERY_MIGRATIONS"),
    ("verihook.store.inbox_schema", "INBOX_MIGRATIONS"),
)


def _domains() -> list[list[Migration]]:
    found: list[list[Migration]] = []
    for module_name, attribute in _SOURCES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            # Only the module itself being absent is fine; a broken import inside it is a bug.
            if exc.name is not None and module_name.startswith(exc.name):
                continue
            raise
        migrations = getattr(module, attribute, None)
        if migrations:
            found.append(list(migrations))
    return found


def all_migrations() -> list[Migration]:
    """Every known migration, dependencies' domains first."""
    return [m for domain in _domains() for m in domain]


def migrate_all(database: Database) -> list[Migration]:
    """Apply what is missing, domain by domain in dependency order; returns the steps applied."""
    return migrate(database, all_migrations())
