"""Alembic environment of the gateway's stores, run programmatically (``gateway.stores.migrations``).

Online, the caller passes an open connection in ``config.attributes`` (it already holds the
migration lock and has adopted a ``create_all`` database); offline (``sgw db upgrade --sql``) it
passes the dialect's name. The version table is ``sgw_alembic_version``, apart from the 前置库's.
"""

from __future__ import annotations

from alembic import context

from gateway.stores.migrations import VERSION_TABLE

config = context.config

if context.is_offline_mode():
    context.configure(dialect_name=config.attributes["dialect_name"], literal_binds=True,
                      version_table=VERSION_TABLE, transactional_ddl=True)
else:
    context.configure(connection=config.attributes["connection"], version_table=VERSION_TABLE,
                      transactional_ddl=True)
with context.begin_transaction():
    context.run_migrations()
