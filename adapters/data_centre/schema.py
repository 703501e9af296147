"""The 前置库 schema by Alembic: ``upgrade head`` of the migrations beside this module.

Programmatic (no alembic.ini): ``migrate(engine, db_schema)`` runs in the caller's thread, so the
adapter's ``prepare()`` calls it through ``asyncio.to_thread``. The version table
``sgw_dc_alembic_version`` lives in the 前置库's schema, apart from anything of the gateway's.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
VERSION_TABLE = "sgw_dc_alembic_version"
# pg_advisory_xact_lock key: gateways starting together migrate one after the other ("sgwdc").
MIGRATION_LOCK_ID = 0x73677764_63


def _config(db_schema: str | None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["db_schema"] = db_schema
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(_config(None)).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine, db_schema: str | None = None) -> str | None:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE,
                                                         "version_table_schema": db_schema})
        return context.get_current_revision()


def migrate(engine: Engine, db_schema: str | None = None, revision: str = "head") -> str | None:
    """Upgrade the 前置库 to ``revision``; returns the revision it is at afterwards."""
    config = _config(db_schema)
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, revision)
    return current_revision(engine, db_schema)
