"""``verihook db``: the schema. Also how the provider command groups open the provider.

Provider commands apply missing migrations themselves before their first query (it is
idempotent and cheap), so ``db upgrade`` is needed only to migrate ahead of time, e.g. before
starting workers.
"""

from __future__ import annotations

import typer

from verihook.cli.errors import reports_errors
from verihook.cli.options import DatabaseOption, JsonOption, print_json
from verihook.provider import SyncProvider
from verihook.store import DEFAULT_DATABASE_URL, applied_versions, open_database
from verihook.store.registry import all_migrations, migrate_all

__all__ = ["DatabaseOption", "JsonOption", "app", "open_provider", "print_json"]

app = typer.Typer(help="The database schema.", no_args_is_help=True)


def open_provider(db: str, allow_private_networks: bool = False) -> SyncProvider:
    return SyncProvider(open_database(db), allow_private_networks=allow_private_networks)


@app.command("upgrade")
@reports_errors
def upgrade(db: DatabaseOption = DEFAULT_DATABASE_URL, json_: JsonOption = False) -> None:
    """Apply every missing migration (provider, delivery, inbox), each in its own transaction.

    Example: verihook db upgrade --db postgresql://postgres@127.0.0.1/verihook
    """
    database = open_database(db)
    applied = migrate_all(database)
    if json_:
        print_json(
            {
                "applied": [
                    {"domain": m.domain, "version": m.version, "name": m.name} for m in applied
                ],
                "versions": applied_versions(database),
            }
        )
        return
    for m in applied:
        typer.echo(f"applied {m.domain} {m.version}: {m.name}")
    typer.echo("database is up to date" if applied else "database was already up to date")


@app.command("status")
@reports_errors
def status(db: DatabaseOption = DEFAULT_DATABASE_URL, json_: JsonOption = False) -> None:
    """Show the applied and the pending migrations of each domain."""
    database = open_database(db)
    versions = applied_versions(database)
    pending = [m for m in all_migrations() if m.version > versions.get(m.domain, 0)]
    if json_:
        print_json(
            {
                "versions": versions,
                "pending": [
                    {"domain": m.domain, "version": m.version, "name": m.name} for m in pending
                ],
            }
        )
        return
    for domain, version in sorted(versions.items()):
        typer.echo(f"{domain}: version {version}")
    for m in pending:
        typer.echo(f"pending {m.domain} {m.version}: {m.name}")
    if not pending:
        typer.echo("database is up to date")
