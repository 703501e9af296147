"""The stores' Alembic revisions on SQLite: empty -> head matches the metadata; create_all DBs adopted."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect
from sqlalchemy.exc import IntegrityError

import gateway.stores.outbox  # noqa: F401  (declares outbox indexes on the metadata)
from gateway.stores import migrations
from gateway.stores.db import create_engine_for
from gateway.stores.journeys import JourneyLog
from gateway.stores.schema import metadata
from gateway.stores.sql_outbox import SqlOutbox


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


def test_0004_keeps_the_outbox_rows_and_their_constraints_and_lets_payloads_be_null() -> None:
    engine = create_engine_for("sqlite://")
    assert migrations.upgrade(engine, "0003") == "0003"
    at = "2025-09-26 10:00:00.000000"
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO accepted_records (record_id, kind, business_key_hash, operation, connector, record,"
            " accepted_at) VALUES ('r-2', 'penalty', 'h2', 'i', 'c', '{\"n\": 2}', ?)", (at,))
        conn.exec_driver_sql(
            "INSERT INTO outbox (adapter, record_id, kind, business_key_hash, payload, enqueued_at, attempts,"
            " next_attempt_at, state) VALUES ('dc', 'r-1', 'penalty', 'h1', '{\"n\": 1}', ?, 0, ?, 'pending')",
            (at, at))
        conn.exec_driver_sql("INSERT INTO journeys (record_id, envelope_id, event, at) VALUES"
                             " ('r-1', 'env-1', 'accepted', ?), ('r-1', NULL, 'delivered', ?)", (at, at))
    assert migrations.upgrade(engine) == migrations.head_revision()
    assert _diff(engine) == []
    with engine.begin() as conn:  # a record accepted in the same write is queued without a copy
        conn.exec_driver_sql(
            "INSERT INTO outbox (adapter, record_id, kind, business_key_hash, payload, enqueued_at, attempts,"
            " next_attempt_at, state) VALUES ('dc', 'r-2', 'penalty', 'h2', NULL, ?, 0, ?, 'pending')", (at, at))
    with pytest.raises(IntegrityError), engine.begin() as conn:  # the state check survived the rebuild
        conn.exec_driver_sql("UPDATE outbox SET state = 'lost'")
    claimed = SqlOutbox(engine).claim("dc", 10, datetime.now(UTC))
    assert [(i.record_id, i.payload) for i in claimed] == [("r-1", {"n": 1}), ("r-2", {"n": 2})]
    assert [s.event for s in JourneyLog(engine).for_envelope("env-1")] == ["accepted"]
    assert {ix["name"] for ix in inspect(engine).get_indexes("outbox")} == {"ix_outbox_claim", "ix_outbox_key_order"}
    assert [uq["name"] for uq in inspect(engine).get_unique_constraints("outbox")] == ["uq_outbox_adapter_record"]
