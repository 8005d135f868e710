"""Every domain's migrations in one list, for ``verihook db upgrade`` and ``Provider.migrate()``.

Each domain's module is imported defensively: a domain not yet built (or not installed) is
simply absent, and the others still migrate.
"""

from __future__ import annotations

import importlib

from verihook.store.migrations import Migration

__all__ = ["all_migrations"]

# (module, attribute) of each domain's migration list.
_SOURCES = (
    ("verihook.store.provider_schema", "PROVIDER_MIGRATIONS"),
    ("verihook.delivery", "DELIVERY_MIGRATIONS"),
    ("verihook.store.inbox_schema", "INBOX_MIGRATIONS"),
)


def all_migrations() -> list[Migration]:
    found: list[Migration] = []
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
            found.extend(migrations)
    return found
