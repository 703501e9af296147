"""The stores' Alembic revisions on SQLite: empty -> head matches the metadata; create_all DBs adopted."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect

import gateway.stores.outbox  # noqa: F401  (declares outbox indexes on the metadata)
from gateway.stores import migrations
from gateway.stores.db import create_engine_for
from gateway.stores.schema import metadata


def _diff(engine: Engine) -> list[object]:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"version_table": migrations.VERSION_TABLE})
        return [d for d in compare_metadata(context, metadata)
                if not (d[0] == "remove_table" and d[1].name == migrations.VERSION_TABLE)]


def test_upgrade_of_an_empty_database_gives_the_metadata_and_twice_is_a_no_op() -> None:
    engine = create_engine_for("sqlite://")
    assert migrations.upgrade(engine) == migrations.head_revision()
    assert _diff(engine) == []
    assert migrations.upgrade(engine) == migrations.head_revision()
    assert _diff(engine) == []


def test_a_create_all_database_is_adopted_and_gets_the_missing_indexes() -> None:
    engine = create_engine_for("sqlite://")
    metadata.create_all(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP INDEX ix_outbox_claim")
        conn.exec_driver_sql("DROP INDEX ix_journeys_duplicates")
    assert migrations.current_revision(engine) is None
    assert migrations.upgrade(engine) == migrations.head_revision()
    names = {ix["name"] for ix in inspect(engine).get_indexes("outbox")}
    assert "ix_outbox_claim" in names
    assert _diff(engine) == []
