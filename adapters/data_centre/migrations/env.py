"""Alembic environment of the 前置库 schema, run programmatically (``adapters.data_centre.schema``).

The caller passes an open connection and the schema in ``config.attributes``; the version table is
``sgw_dc_alembic_version`` in that schema, so it never meets the gateway's own. On PostgreSQL an
advisory lock serialises gateways that start together against one 前置库.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, text
from sqlalchemy.schema import CreateSchema

from adapters.data_centre.schema import MIGRATION_LOCK_ID, VERSION_TABLE

config = context.config
connection: Connection = config.attributes["connection"]
db_schema: str | None = config.attributes.get("db_schema")

if connection.dialect.name == "postgresql":
    connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": MIGRATION_LOCK_ID})
    if db_schema:
        connection.execute(CreateSchema(db_schema, if_not_exists=True))

context.configure(connection=connection, version_table=VERSION_TABLE, version_table_schema=db_schema,
                  transactional_ddl=True)
with context.begin_transaction():
    context.run_migrations()
