"""The gateway's own stores by Alembic: ``upgrade(engine)`` runs ``upgrade head`` of the revisions here.

Programmatic (no alembic.ini), in the caller's thread: ``init_schema`` runs it, and the runtime
calls that through ``asyncio.to_thread``. Everything happens in one transaction that first takes
the migration lock (``pg_advisory_xact_lock`` on PostgreSQL; ``BEGIN IMMEDIATE`` on SQLite), so
instances starting together migrate one after the other and the later ones find nothing to do.

A database made by ``create_all`` before Alembic (the baseline's tables present, no version table)
is stamped at the baseline after checking that every baseline table is there, then upgraded.
"""

from __future__ import annotations

from pathlib import Path
from typing import TextIO

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, inspect, text

from gateway.errors import ConfigError

MIGRATIONS = Path(__file__).resolve().parent
VERSION_TABLE = "sgw_alembic_version"
# pg_advisory_xact_lock key, distinct from the 前置库's ("sgwst").
MIGRATION_LOCK_ID = 0x73677773_74
BASELINE = "0001"
BASELINE_TABLES = frozenset({
    "accepted_records", "api_keys", "audit_head", "audit_log", "cd_batch_sequences", "connector_state",
    "departments", "journeys", "outbox", "registry_connectors", "registry_mapping_versions",
    "registry_revision", "registry_routing", "rejections",
})


def alembic_config(stdout: TextIO | None = None) -> Config:
    config = Config(stdout=stdout) if stdout is not None else Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE}).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> str | None:
    """Upgrade the stores to ``revision`` (adopting a ``create_all`` database); returns where they are."""
    config = alembic_config()
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": MIGRATION_LOCK_ID})
        adopt_legacy(conn, ScriptDirectory.from_config(config))
        config.attributes["connection"] = conn
        command.upgrade(config, revision)
    return current_revision(engine)


def upgrade_sql(dialect_name: str, out: TextIO, revision: str = "head") -> None:
    """Write the SQL of an upgrade from an empty database to ``revision``, for a DBA to run."""
    config = alembic_config(stdout=out)
    config.output_buffer = out
    config.attributes["dialect_name"] = dialect_name
    command.upgrade(config, revision, sql=True)


def history() -> list[str]:
    """One line per revision, newest first: ``0001 -> 0002 (head): title``."""
    script = ScriptDirectory.from_config(alembic_config())
    return [f"{rev.down_revision or '<base>'} -> {rev.revision}{' (head)' if rev.is_head else ''}: {rev.doc}"
            for rev in script.walk_revisions()]


def adopt_legacy(conn: Connection, script: ScriptDirectory) -> bool:
    """Stamp a database made by ``create_all`` at the baseline; False when there is nothing to adopt."""
    existing = set(inspect(conn).get_table_names())
    if VERSION_TABLE in existing or not existing & BASELINE_TABLES:
        return False
    missing = sorted(BASELINE_TABLES - existing)
    if missing:
        raise ConfigError(f"stores.database_url: the database has some of the gateway's tables but not "
                          f"{', '.join(missing)}, and no {VERSION_TABLE}: not a gateway store to adopt")
    MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE}).stamp(script, BASELINE)
    return True
