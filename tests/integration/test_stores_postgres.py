"""The stores and the data-centre adapter against the real PostgreSQL (127.0.0.1:5432, database test).

Each test gets a schema of its own (dropped afterwards) and runs the same scenarios as the SQLite
unit tests, imported from them; plus what only PostgreSQL has: ddl.sql loaded beside our tables and
compared column by column, samples/rows.sql inserted into our tables, the append-only trigger.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from typing import Any

import psycopg
import pytest
from pydantic import SecretStr
from sqlalchemy import Engine

from adapters.data_centre import DataCentreAdapter, DataCentreConfig, exchange_tables
from adapters.data_centre.schema import VERSION_TABLE, current_revision, head_revision, migrate
from gateway.stores import SqlBatchSequence, create_engine_for, init_schema
from tests.pg import SERVER, execute, fresh_schema, schema_url
from tests.unit.test_data_centre import (  # noqa: F401  (fixtures and tests run here on PostgreSQL)
    DDL,
    NOW,
    ROWS,
    Clock,
    adapter,
    clock,
    penalty,
    rows_of,
    test_a_batch_mixing_known_and_new_records_writes_only_the_new,
    test_a_deletion_row_carries_only_common_and_key_fields,
    test_an_injected_sequence_numbers_the_batches,
    test_bad_rows_are_rejected_and_the_rest_written,
    test_cd_batch_sequence_per_day,
    test_configured_codes_make_cd_source,
    test_one_row_per_kind_from_the_valid_records,
    test_same_record_twice_is_one_row,
    test_sample_rows_are_written_as_in_the_samples,
    test_unavailable_target_or_sequence_means_retry,
)
from tests.unit.test_stores import (  # noqa: F401
    test_a_deleted_record_is_no_longer_accepted,
    test_a_failure_mid_write_leaves_nothing_behind,
    test_a_new_rejection_supersedes_the_open_one_and_keeps_its_due_date,
    test_accepted_records_answer_duplicates_and_history,
    test_batch_sequence_per_target_and_day,
    test_due_date_counts_from_the_shanghai_date,
    test_due_date_on_the_friday_before_national_day_is_after_the_holiday,
    test_ingest_batch_is_written_together_and_idempotently,
    test_ingest_rows_are_stored_as_the_core_tables_store_them,
    test_journey_of_a_record_in_order,
    test_list_filters_by_department_status_and_due_date,
    test_outbox_claim_lease_and_outcomes,
    test_outbox_claims_do_not_overlap,
    test_pii_keys_are_stored_only_as_hashes,
    test_queued_steps_stored_with_the_accepted_one_read_as_steps_of_their_own,
    test_raw_bytes_are_kept_as_base64,
    test_rejection_is_resolved_by_a_later_accepted_record_with_the_same_key,
    test_resolve_by_business_key_hash,
    test_the_store_writes_every_step_of_an_envelope_in_order,
)

pytestmark = pytest.mark.integration

@pytest.fixture
def schema() -> Iterator[str]:
    with fresh_schema("sgw_test") as name:
        yield name


@pytest.fixture
def engine(schema: str) -> Iterator[Engine]:
    engine = create_engine_for(schema_url(schema))
    init_schema(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def target_url(schema: str) -> str:
    return schema_url(schema)


@pytest.fixture
def target(target_url: str) -> Iterator[Engine]:
    engine = create_engine_for(target_url)
    yield engine
    engine.dispose()


_COLUMNS = """SELECT table_name, column_name, ordinal_position, data_type, character_maximum_length,
                     numeric_precision, numeric_scale, datetime_precision, is_nullable,
                     replace(column_default, table_schema || '.', '') AS column_default
              FROM information_schema.columns WHERE table_schema = %s ORDER BY table_name, ordinal_position"""
_NAMES = """SELECT tablename, indexname FROM pg_indexes WHERE schemaname = %s
            UNION SELECT c.relname, t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
                  JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND NOT t.tgisinternal
            UNION SELECT table_name, constraint_name FROM information_schema.table_constraints
                  WHERE table_schema = %s AND constraint_type IN ('PRIMARY KEY', 'CHECK')
                  AND constraint_name NOT LIKE '%%not_null'"""


def _catalog(schema: str) -> tuple[list[tuple[Any, ...]], set[tuple[Any, ...]]]:
    with psycopg.connect(SERVER) as conn:
        columns = conn.execute(_COLUMNS, (schema,)).fetchall()
        names = set(conn.execute(_NAMES, (schema, schema, schema)).fetchall())
    return columns, names


def test_the_migrated_tables_match_ddl_sql_in_postgresql(schema: str) -> None:
    """The 前置库 as the Alembic migrations make it (the adapter's ``prepare()``) against ddl.sql:
    every column with its type, nullability and default, every index, check and trigger."""
    reference = f"{schema}_ref"
    execute(DDL.read_text(encoding="utf-8").replace("qzk", reference))
    try:
        engine = create_engine_for(SERVER)
        assert migrate(engine, schema) == head_revision()
        engine.dispose()
        ours_columns, ours_names = _catalog(schema)
        ref_columns, ref_names = _catalog(reference)
    finally:
        execute(f"DROP SCHEMA {reference} CASCADE")
    ours_columns = [c for c in ours_columns if c[0] not in ("cd_batch_sequences", VERSION_TABLE)]
    assert len(ref_columns) == 484
    assert ours_columns == ref_columns
    assert {n for n in ours_names if n[0] not in ("cd_batch_sequences", VERSION_TABLE)} == ref_names


async def test_prepare_migrates_once_and_a_ddl_sql_schema_is_adopted(schema: str) -> None:
    """``prepare()`` runs ``upgrade head`` (twice is a no-op); a 前置库 loaded from ddl.sql is adopted."""
    migrating = DataCentreAdapter(DataCentreConfig(url=SecretStr(schema_url(schema)), db_schema=schema,
                                                   create_tables=True))
    await migrating.prepare()
    await migrating.prepare()
    await migrating.close()
    engine = create_engine_for(SERVER)
    assert current_revision(engine, schema) == head_revision()
    adopted = f"{schema}_ddl"
    execute(DDL.read_text(encoding="utf-8").replace("qzk", adopted))
    try:
        assert migrate(engine, adopted) == head_revision()
    finally:
        engine.dispose()
        execute(f"DROP SCHEMA {adopted} CASCADE")


def test_sample_rows_sql_loads_into_our_tables_and_they_are_append_only(schema: str, target: Engine) -> None:
    exchange_tables().metadata.create_all(target)
    rows_sql = ROWS.read_text(encoding="utf-8")
    execute(rows_sql.replace("SET search_path TO qzk;", f"SET search_path TO {schema};"))
    assert [r["cd_operation"] for r in rows_of(target, "penalty")] == ["i", "i", "u", "d"]
    with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
        execute(f"UPDATE {schema}.ex_penalty SET cd_operation = 'u'")
    with pytest.raises(psycopg.errors.CheckViolation):
        execute(f"INSERT INTO {schema}.ex_feedback (cd_id, table_name, status) "
                 "VALUES ('x', 'ex_penalty', 'rejected')")  # a rejection needs its error code


async def test_the_gateway_sequence_numbers_the_batches_in_production(target_url: str, engine: Engine,
                                                                     target: Engine) -> None:
    exchange_tables().metadata.create_all(target)  # the 前置库 exists; the adapter creates nothing
    sequence = SqlBatchSequence(engine)
    assert sequence.next_value("data_centre", date(2025, 6, 20)) == 1
    production = DataCentreAdapter(DataCentreConfig(url=SecretStr(target_url)), sequence=sequence,
                                   clock=Clock(NOW))
    await production.deliver([penalty()])
    await production.close()
    assert rows_of(target, "penalty")[0]["cd_batch"] == "2025062000002"
    assert rows_of(target, "penalty")[0]["cd_time"] == datetime(2025, 6, 20, 18, 5, 2)


def test_a_claim_probes_earlier_versions_per_item_on_a_new_outbox(engine: Engine, schema: str) -> None:
    """A new outbox has no statistics until autovacuum analyses it, and ingest fills it faster
    than that: the claim's check for an earlier version of the same key must stay a probe of
    ix_outbox_key_order per item. As an anti-join the planner compared every due item with every
    queued one (1 s per claim of 500 at 10,000 items)."""
    from gateway.stores.outbox import OutboxRow
    from gateway.stores.sql_outbox import SqlOutbox, _claim_sql

    outbox = SqlOutbox(engine)
    outbox.put_many([OutboxRow("dc", f"r{i}", "penalty", {"n": i}, NOW, business_key=(f"k{i % 1500}",))
                     for i in range(3000)])
    later = datetime(2100, 1, 1, tzinfo=NOW.tzinfo)
    head = (NOW, NOW, "dc", "pending", later, 500)
    with psycopg.connect(SERVER, options=f"-csearch_path={schema}") as conn:
        plan = "\n".join(row[0] for row in conn.execute(
            ("EXPLAIN " + _claim_sql("postgresql", "pending")).encode(), head))
    assert "SubPlan" in plan and "Anti Join" not in plan, plan
    claimed = outbox.claim("dc", 2000, later)
    assert [item.record_id for item in claimed] == [f"r{i}" for i in range(1500)]  # one version per key


def assert_probes(schema: str, sql: str, params: tuple[Any, ...], table: str, index: str) -> None:
    """The plan of ``sql`` (in ``schema``, not analysed) is one probe of ``index`` per key: a nested
    loop over the keys, not a scan of ``table`` or of a prefix of the index filtered afterwards."""
    with psycopg.connect(SERVER, options=f"-csearch_path={schema}") as conn:
        plan = "\n".join(row[0] for row in conn.execute(("EXPLAIN " + sql).encode(), params))
    assert "Nested Loop" in plan and f"Index Scan using {index}" in plan, plan
    assert "Bitmap" not in plan and f"Seq Scan on {table}" not in plan, plan


def test_a_batch_snapshot_probes_each_business_key_on_a_new_store(engine: Engine, schema: str) -> None:
    """Ingest reads the latest operation of every key of a batch (``snapshot``) before it writes.
    On a table not analysed yet the planner scanned every record of the kind for the batch's keys
    (growing with the table); it must stay one probe of ix_accepted_records_key per key, and still
    give each key's latest operation."""
    from gateway.stores.keys import key_hash
    from gateway.stores.records import AcceptedRecords, AcceptedRow, _latest_operations_sql

    records = AcceptedRecords(engine)
    def operation(i: int) -> str:  # a key's second version deletes the even keys, updates the odd ones
        return "i" if i < 3000 else "d" if i % 2 == 0 else "u"

    records.add([AcceptedRow(f"r{i}", "penalty", (f"k{i % 3000}",), {"operation": operation(i)}, "eco",
                             datetime(2025, 1, 1 + i // 3000, tzinfo=NOW.tzinfo)) for i in range(6000)]
                + [AcceptedRow("other", "license", ("k1",), {"operation": "d"}, "eco", NOW)])
    digests = [key_hash("penalty", (f"k{i}",), None) for i in range(200)]
    assert_probes(schema, *_latest_operations_sql("postgresql", "penalty", digests), "accepted_records",
                  "ix_accepted_records_key")
    keys = [("penalty", (f"k{i}",)) for i in (0, 1, 2999)] + [("penalty", ("missing",)), ("license", ("k1",))]
    view = records.snapshot(["r0", "nope"], keys)
    assert [view.has_accepted(kind, key) for kind, key in keys] == [False, True, True, False, False]
    assert view.is_duplicate("r0") and not view.is_duplicate("nope")


def test_the_snapshot_reads_one_version_per_key_however_many_there_are(engine: Engine, schema: str) -> None:
    """A key's latest version is found without reading its older ones (a key sent 300 times here):
    each key's probe returns at most its tie group (versions accepted in one envelope), and the
    answers are those of SQLite's (tests/unit/test_stores.py)."""
    from gateway.stores.keys import key_hash
    from gateway.stores.records import AcceptedRecords, _latest_operations_sql
    from tests.unit.test_stores import versions

    records = AcceptedRecords(engine)
    records.add(versions())
    keys = [("penalty", (k,)) for k in ("k0", "k1", "k2", "missing")]
    view = records.snapshot([], keys)
    assert [view.has_accepted(kind, key) for kind, key in keys] == [False, False, True, False]
    sql, params = _latest_operations_sql("postgresql", "penalty", [key_hash(k, key, None) for k, key in keys])
    with psycopg.connect(SERVER, options=f"-csearch_path={schema}") as conn:
        row = conn.execute(("EXPLAIN (ANALYZE, FORMAT JSON) " + sql).encode(), params).fetchone()
    assert row is not None
    (plan,) = row[0]

    def scans(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
        if node.get("Relation Name") == "accepted_records":
            yield node
        for child in node.get("Plans", ()):
            yield from scans(child)

    read = [node["Actual Rows"] for node in scans(plan["Plan"])]
    assert read and max(read) <= 3, read  # not k0's 300 versions


def test_accepting_records_probes_open_rejections_per_key_on_a_new_store(engine: Engine, schema: str) -> None:
    """Every accepted record of a write looks for open rejections of its key to resolve. Like the
    snapshot, that lookup must stay one probe of ix_rejections_key per key on a table not analysed
    yet, where the planner scanned every rejection of the kind; and resolve only open ones."""
    from gateway.stores.keys import key_hash
    from gateway.stores.rejections import RejectedRow, _open_by_key_sql, insert_rejections, resolve_hashes
    from mapping.calendar import WorkingCalendar

    error = {"code": "REQUIRED", "field": "name", "severity": "error", "message_zh": "缺少", "message_en": "missing"}
    with engine.begin() as conn:
        insert_rejections(conn, [RejectedRow("penalty", "eco", NOW, [error], business_key=(f"k{i}",))
                                 for i in range(3000)], WorkingCalendar(), None)
    digests = [key_hash("penalty", (f"k{i}",), None) for i in range(200)]
    assert_probes(schema, *_open_by_key_sql("postgresql", "penalty", digests), "rejections", "ix_rejections_key")
    resolutions = {("penalty", key_hash("penalty", (f"k{i}",), None)): (f"r{i}", NOW) for i in (0, 7)}
    resolutions[("penalty", key_hash("penalty", ("never-rejected",), None))] = ("r-x", NOW)
    with engine.begin() as conn:
        assert resolve_hashes(conn, resolutions) == 2
    with engine.begin() as conn:
        assert resolve_hashes(conn, resolutions) == 0  # resolved ones are not open any more
