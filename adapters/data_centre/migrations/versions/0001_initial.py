"""The 前置库 of standard 1.0: ``ex_<kind>`` per record kind, ``ex_feedback`` and ``cd_batch_sequences``.

The tables are those of ``sources/data-centre/ddl.sql`` (generated from the standard 1.0, which is
frozen: a later standard version adds its columns in a revision of its own), built from
``exchange_tables(schema, "1.0")`` with the append-only trigger and the ``cd_time`` default on
PostgreSQL. Tables that exist already (a 前置库 loaded from ddl.sql, an older embedded file) are
kept as they are, so this revision adopts them.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

from alembic import context, op
from sqlalchemy import text

from adapters.data_centre.tables import exchange_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

STANDARD_VERSION = "1.0"
CD_TIME_DEFAULT = "(now() AT TIME ZONE 'Asia/Shanghai')"


def _schema() -> str | None:
    schema: str | None = context.config.attributes.get("db_schema")
    return schema


def upgrade() -> None:
    bind = op.get_bind()
    tables = exchange_tables(_schema(), STANDARD_VERSION)
    missing = [t for t in tables.kinds.values() if not bind.dialect.has_table(bind, t.name, schema=t.schema)]
    tables.metadata.create_all(bind, checkfirst=True)
    if bind.dialect.name == "postgresql":
        prefix = f'"{tables.feedback.schema}".' if tables.feedback.schema else ""
        for table in missing:
            op.execute(text(f"ALTER TABLE {prefix}{table.name} ALTER COLUMN cd_time SET DEFAULT {CD_TIME_DEFAULT}"))


def downgrade() -> None:
    bind = op.get_bind()
    tables = exchange_tables(_schema(), STANDARD_VERSION)
    tables.metadata.drop_all(bind)
    if bind.dialect.name == "postgresql":
        prefix = f'"{tables.feedback.schema}".' if tables.feedback.schema else ""
        op.execute(text(f"DROP FUNCTION IF EXISTS {prefix}ex_append_only()"))
