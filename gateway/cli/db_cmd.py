"""``sgw db upgrade|current|history``: the gateway's own stores under Alembic.

The gateway upgrades its stores at start; these commands let a DBA do it beforehand, see where a
database is, or print the SQL of an upgrade from an empty database (``upgrade --sql``).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

ConfigOption = Annotated[
    Path | None, typer.Option("--config", "-c", help="Gateway config YAML.", exists=True, dir_okay=False)
]
db_app = typer.Typer(no_args_is_help=True, help="The gateway's stores: Alembic migrations.")


@db_app.command("upgrade")
def upgrade_cmd(
    config: ConfigOption = None,
    sql: Annotated[str | None, typer.Option("--sql", metavar="DIALECT",
                                            help="Print the SQL (postgresql or sqlite) instead of running it.")] = None,
) -> None:
    """Upgrade the stores named by the config to the newest revision (adopting older databases)."""
    from gateway.stores import migrations

    if sql is not None:
        if sql not in ("postgresql", "sqlite"):
            raise typer.BadParameter("--sql takes postgresql or sqlite")
        migrations.upgrade_sql(sql, sys.stdout)
        return
    from gateway.settings import load_settings
    from gateway.stores.db import create_engine_for

    engine = create_engine_for(load_settings(config).stores.database_url)
    try:
        typer.echo(f"at {migrations.upgrade(engine)}")
    finally:
        engine.dispose()


@db_app.command("current")
def current_cmd(config: ConfigOption = None) -> None:
    """The revision the stores are at (none: never migrated)."""
    from gateway.settings import load_settings
    from gateway.stores import migrations
    from gateway.stores.db import create_engine_for

    engine = create_engine_for(load_settings(config).stores.database_url)
    try:
        current = migrations.current_revision(engine)
    finally:
        engine.dispose()
    typer.echo(f"{current or 'none'} (head {migrations.head_revision()})")


@db_app.command("history")
def history_cmd() -> None:
    """Every revision, newest first."""
    from gateway.stores import migrations

    for line in migrations.history():
        typer.echo(line)
