"""The gateway's stores under Alembic on the real PostgreSQL: an empty schema upgraded has exactly
the metadata's tables and indexes; instances starting together migrate one after the other."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine

import gateway.stores.outbox  # noqa: F401  (declares the outbox indexes on the metadata)
from gateway.stores import migrations
from gateway.stores.db import create_engine_for
from gateway.stores.schema import metadata
from tests.pg import fresh_schema, schema_url

pytestmark = pytest.mark.integration



@pytest.fixture
def schema() -> Iterator[str]:
    with fresh_schema("sgw_mig") as name:
        yield name


def _engine(schema: str) -> Engine:
    return create_engine_for(schema_url(schema))


def test_an_empty_schema_upgraded_matches_the_metadata(schema: str) -> None:
    engine = _engine(schema)
    try:
        assert migrations.upgrade(engine) == migrations.head_revision()
        assert migrations.upgrade(engine) == migrations.head_revision()  # a second run is a no-op
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={
                "include_name": lambda name, type_, _parent: name != migrations.VERSION_TABLE})
            assert compare_metadata(context, metadata) == []
    finally:
        engine.dispose()


def test_instances_starting_together_both_end_at_head(schema: str) -> None:
    engines = [_engine(schema), _engine(schema)]
    results: list[str | None] = []
    errors: list[BaseException] = []

    def start(engine: Engine) -> None:
        try:
            results.append(migrations.upgrade(engine))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(e,)) for e in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=50)
    for engine in engines:
        engine.dispose()
    assert errors == []
    assert results == [migrations.head_revision()] * 2


def test_0004_lets_ingest_queue_without_a_payload_and_keeps_the_queued_rows(schema: str) -> None:
    engine = _engine(schema)
    try:
        assert migrations.upgrade(engine, "0003") == "0003"
        with engine.begin() as conn:
            conn.exec_driver_sql(
                "INSERT INTO outbox (adapter, record_id, kind, payload, enqueued_at, next_attempt_at)"
                " VALUES ('dc', 'r-1', 'penalty', '{\"n\": 1}', now(), now())")
        assert migrations.upgrade(engine) == migrations.head_revision()
        with engine.begin() as conn:
            conn.exec_driver_sql(
                "INSERT INTO outbox (adapter, record_id, kind, payload, enqueued_at, next_attempt_at)"
                " VALUES ('dc', 'r-2', 'penalty', NULL, now(), now())")
            rows = conn.exec_driver_sql("SELECT record_id, payload FROM outbox ORDER BY id").all()
        assert [tuple(r) for r in rows] == [("r-1", {"n": 1}), ("r-2", None)]
    finally:
        engine.dispose()
