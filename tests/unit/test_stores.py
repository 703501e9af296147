"""The gateway's stores on SQLite; tests/integration/test_stores_postgres.py runs the same on PostgreSQL.

Every test takes the ``engine`` fixture (an initialised, empty store) so that the PostgreSQL module
can import these tests and give them its own engine.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import chinese_calendar
import pytest
from sqlalchemy import Engine, event, func, select, text
from sqlalchemy.exc import OperationalError

from gateway.errors import ConfigError, StoreUnavailable
from gateway.stores import (
    AcceptedRecords,
    AcceptedRow,
    IngestWriter,
    JourneyLog,
    JourneyRow,
    OutboxRow,
    RejectedRow,
    RejectionsLedger,
    SqlBatchSequence,
    SqlOutbox,
    create_engine_for,
    db,
    init_schema,
    key_hash,
    pii_key_kinds,
)
from gateway.stores.db import SQLITE_CACHE_KIB, WAL_CHECKPOINT_BYTES, checkpoint_wal, reading
from gateway.stores.outbox import DeadLetterFilter
from gateway.stores.schema import accepted_records, journeys, outbox, rejections
from mapping.findings import Finding

T0 = datetime(2025, 9, 26, 10, 0, tzinfo=UTC)  # Friday before the 2025 National Day holiday
PENALTY_KEY = ("11330106002500121C", "杭西市监罚〔2025〕118号")
INSPECTION_KEY = ("11330106002500121C", "JC330106202506100031")
ERROR = Finding("REQUIRED", "decided_at", "decided_at is required", "作出处罚决定日期必填")


class OfficialCalendar:
    """The State Council calendar through chinese_calendar (stands in for gateway.calendar)."""

    def add_working_days(self, start: date, days: int) -> date:
        current = start
        while days > 0:
            current += timedelta(days=1)
            days -= chinese_calendar.is_workday(current)
        return current


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = create_engine_for(f"sqlite:///{tmp_path}/nested/dir/gateway.db")
    init_schema(engine)
    yield engine
    engine.dispose()


def rejected(key: tuple[str, ...] | None = PENALTY_KEY, *, at: datetime = T0, record_id: str = "r-bad",
             kind: str = "penalty", department: str = "xihu-scj", raw: Any = None) -> RejectedRow:
    return RejectedRow(kind=kind, connector="batch-xihu", rejected_at=at, errors=[ERROR],
                       business_key=key, department=department, source_record_id="CF-118",
                       record_id=record_id, raw_payload=raw if raw is not None else {"CF_WSH": "118"},
                       location="row 2, column CF_JDRQ")


def accepted(record_id: str, key: tuple[str, ...] = PENALTY_KEY, *, kind: str = "penalty",
             operation: str = "i", at: datetime = T0, fine: str = "5000.00") -> AcceptedRow:
    record = {"record_kind": kind, "record_id": record_id, "operation": operation, "fine_amount_yuan": fine}
    return AcceptedRow(record_id=record_id, kind=kind, business_key=key, record=record,
                       connector="batch-xihu", accepted_at=at, department="xihu-scj",
                       source_record_id="CF-118")


def queued(record_id: str, adapter: str = "data_centre", at: datetime = T0) -> OutboxRow:
    # Each row its own decision: versions of one business key are delivered one at a time, in order.
    key = (PENALTY_KEY[0], f"{PENALTY_KEY[1]}-{record_id}")
    return OutboxRow(adapter=adapter, record_id=record_id, kind="penalty", payload={"record_id": record_id},
                     enqueued_at=at, department="xihu-scj", business_key=key)


def count(engine: Engine, table: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


# --- engine -------------------------------------------------------------------------------------

def test_sqlite_engine_creates_the_folder_and_sets_its_pragmas(tmp_path: Path) -> None:
    engine = create_engine_for(f"sqlite:///{tmp_path}/a/b/store.db")
    with engine.connect() as conn:
        pragmas = {name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
                   for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")}
    engine.dispose()
    assert (tmp_path / "a" / "b" / "store.db").exists()
    assert pragmas == {"journal_mode": "wal", "synchronous": 1, "foreign_keys": 1, "busy_timeout": 10_000}


def test_sqlite_writers_share_one_connection_and_reads_have_their_own(tmp_path: Path) -> None:
    """One connection for every transaction but ``reading``: its page cache stays warm from one
    write to the next, and a read of the accepted records does not queue behind a write."""
    engine = create_engine_for(f"sqlite:///{tmp_path}/store.db")
    with engine.begin() as first:
        writer = first.connection.dbapi_connection
        first.exec_driver_sql("CREATE TABLE t (x INTEGER)")
    with engine.begin() as second:
        assert second.connection.dbapi_connection is writer
        second.exec_driver_sql("INSERT INTO t VALUES (1)")
        with reading(engine) as reader:  # while the writer is busy
            assert reader.connection.dbapi_connection is not writer
            assert reader.exec_driver_sql("SELECT count(*) FROM t").scalar() == 0  # its own snapshot
        other_writes: list[Any] = []

        def write() -> None:
            with engine.begin() as conn:
                other_writes.append(conn.connection.dbapi_connection)
                conn.exec_driver_sql("INSERT INTO t VALUES (2)")

        queued = threading.Thread(target=write)
        queued.start()  # waits for the connection, not for SQLite's lock on a connection of its own
    queued.join(timeout=10)
    assert other_writes == [writer]
    engine.dispose()


def test_a_wal_past_the_threshold_is_checkpointed_in_the_background_call(tmp_path: Path) -> None:
    """``checkpoint_wal`` (the runtime's periodic call) copies committed pages into the database
    once the WAL holds WAL_CHECKPOINT_BYTES; below that, and for other databases, it does nothing."""
    engine = create_engine_for(f"sqlite:///{tmp_path}/store.db")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (x BLOB)")
    assert not checkpoint_wal(engine)  # a small WAL is left alone
    blob = b"x" * 3000
    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO t VALUES (?)", [(blob,)] * (WAL_CHECKPOINT_BYTES // len(blob) + 10))
    database = tmp_path / "store.db"
    before = database.stat().st_size
    assert checkpoint_wal(engine)
    assert database.stat().st_size > before + WAL_CHECKPOINT_BYTES // 2  # the pages are in the database now
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA cache_size").scalar() == -SQLITE_CACHE_KIB
    engine.dispose()
    assert not checkpoint_wal(create_engine_for("sqlite://"))


def test_a_wal_past_the_truncate_threshold_is_emptied(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """PASSIVE leaves the WAL file its size (writers reuse it); past WAL_TRUNCATE_BYTES (lowered
    here from 128 MB) the checkpoint empties it, so page reads do not search an ever longer WAL."""
    engine = create_engine_for(f"sqlite:///{tmp_path}/store.db")
    wal = tmp_path / "store.db-wal"
    blob = b"x" * 3000
    rows = [(blob,)] * (WAL_CHECKPOINT_BYTES // len(blob) + 10)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (x BLOB)")
        conn.exec_driver_sql("INSERT INTO t VALUES (?)", rows)
    assert checkpoint_wal(engine)
    assert wal.stat().st_size >= WAL_CHECKPOINT_BYTES  # PASSIVE: copied, not emptied
    monkeypatch.setattr(db, "WAL_TRUNCATE_BYTES", WAL_CHECKPOINT_BYTES)
    assert checkpoint_wal(engine)
    assert wal.stat().st_size == 0
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM t").scalar() == len(rows)
    engine.dispose()


def test_unsupported_database_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unsupported database"):
        create_engine_for("mysql://localhost/x")


def test_postgresql_urls_use_psycopg_3() -> None:
    engine = create_engine_for("postgresql://user@127.0.0.1:1/none")
    assert engine.dialect.driver == "psycopg"


# --- rejections ---------------------------------------------------------------------------------

def test_due_date_on_the_friday_before_national_day_is_after_the_holiday(engine: Engine) -> None:
    ledger = RejectionsLedger(engine, OfficialCalendar())
    rejection = ledger.get(ledger.add(rejected()))
    assert rejection is not None
    # 9-28 (adjusted Sunday), 9-29, 9-30, then 10-1..10-8 off, 10-9, 10-10.
    assert rejection.due_on == date(2025, 10, 10)
    assert rejection.status == "open"
    assert rejection.rejected_at == T0
    assert rejection.errors[0]["code"] == "REQUIRED" and rejection.errors[0]["message_zh"]
    assert rejection.raw_payload == {"CF_WSH": "118"}


def test_due_date_with_the_gateway_calendar(engine: Engine) -> None:
    from mapping.calendar import WorkingCalendar

    rejection = RejectionsLedger(engine, WorkingCalendar()).get(
        RejectionsLedger(engine, WorkingCalendar()).add(rejected()))
    assert rejection is not None and rejection.due_on == date(2025, 10, 10)


def test_due_date_counts_from_the_shanghai_date(engine: Engine) -> None:
    ledger = RejectionsLedger(engine, OfficialCalendar())
    late_thursday_utc = datetime(2025, 9, 25, 17, 0, tzinfo=UTC)  # Friday 01:00 in Shanghai
    rejection = ledger.get(ledger.add(rejected(at=late_thursday_utc)))
    assert rejection is not None and rejection.due_on == date(2025, 10, 10)


def test_list_filters_by_department_status_and_due_date(engine: Engine) -> None:
    ledger = RejectionsLedger(engine, OfficialCalendar())
    ledger.add(rejected(("A", "1"), department="d1"))
    ledger.add(rejected(("A", "2"), department="d2", at=T0 + timedelta(days=30)))
    ledger.add(rejected(("A", "3"), department="d1", at=T0 + timedelta(days=7)))  # due 10-14
    assert [r.business_key for r in ledger.list(department="d1")] == ['["A","3"]', '["A","1"]']
    assert [r.business_key for r in ledger.list(due_before=date(2025, 10, 11))] == ['["A","1"]']
    assert len(ledger.list(status="open", limit=2)) == 2
    assert [r.business_key for r in ledger.list(limit=1, offset=2)] == ['["A","1"]']
    assert ledger.count(department="d1") == 2
    assert ledger.list(status="resolved") == []


def test_rejection_is_resolved_by_a_later_accepted_record_with_the_same_key(engine: Engine) -> None:
    ledger = RejectionsLedger(engine, OfficialCalendar())
    writer = IngestWriter(engine, OfficialCalendar())
    writer.write([], [rejected()], [], [])
    other = ledger.add(rejected(("OTHER", "KEY")))
    fixed_at = T0 + timedelta(days=2)
    writer.write([accepted("r-fixed", at=fixed_at)], [], [], [])
    first = ledger.list(status="resolved")
    assert [(r.resolved_by_record_id, r.resolved_at) for r in first] == [("r-fixed", fixed_at)]
    still_open = ledger.get(other)
    assert still_open is not None and still_open.status == "open"


def test_resolve_by_business_key_hash(engine: Engine) -> None:
    ledger = RejectionsLedger(engine, OfficialCalendar())
    ledger.add(rejected())
    assert ledger.resolve_by_business_key("penalty", key_hash("penalty", PENALTY_KEY), "r-2") == 1
    assert ledger.resolve_by_business_key("penalty", key_hash("penalty", PENALTY_KEY), "r-3") == 0
    assert ledger.count(status="resolved") == 1


def test_a_new_rejection_supersedes_the_open_one_and_keeps_its_due_date(engine: Engine) -> None:
    ledger = RejectionsLedger(engine, OfficialCalendar())
    first = ledger.add(rejected(record_id="r-1"))
    second = ledger.add(rejected(record_id="r-2", at=T0 + timedelta(days=14)))
    old, new = ledger.get(first), ledger.get(second)
    assert old is not None and new is not None
    assert (old.status, old.resolved_by_record_id) == ("superseded", "r-2")
    assert (new.status, new.due_on) == ("open", date(2025, 10, 10))


def test_rejections_without_a_whole_business_key_are_not_keyed_and_never_supersede(engine: Engine) -> None:
    # Two rows of a file both missing 处罚行为编号 (or two MQTT messages refused before mapping, key
    # ()) are two different records: each stays open for its department, neither supersedes the other.
    ledger = RejectionsLedger(engine, OfficialCalendar())
    IngestWriter(engine, OfficialCalendar()).write(
        [], [rejected(("",), record_id="r-1"), rejected(("",), record_id="r-2")], [], [])
    ledger.add(rejected((), record_id=None))  # type: ignore[arg-type]
    ledger.add(rejected((), record_id=None))  # type: ignore[arg-type]
    ledger.add(rejected(("A", ""), record_id="r-3"))
    ledger.add(rejected(("A", ""), record_id="r-4"))
    rows = ledger.list(limit=10)
    assert [r.status for r in rows] == ["open"] * 6
    assert {(r.business_key, r.business_key_hash) for r in rows} == {(None, None)}


def test_pii_keys_are_stored_only_as_hashes(engine: Engine) -> None:
    assert "supervised_object" in pii_key_kinds() and "penalty" not in pii_key_kinds()
    ledger = RejectionsLedger(engine, OfficialCalendar(), key_secret=b"k")
    person = ("特定自然人", "330106199001011234")
    found = ledger.get(ledger.add(rejected(person, kind="supervised_object")))
    assert found is not None and found.business_key is None
    assert found.business_key_hash == key_hash("supervised_object", person, b"k")
    assert key_hash("supervised_object", person, b"k") != key_hash("supervised_object", person)
    records = AcceptedRecords(engine, key_secret=b"k")
    records.add([accepted("r-p", person, kind="supervised_object")])
    with engine.connect() as conn:
        stored = conn.execute(select(accepted_records.c.business_key)).scalar_one()
    assert stored is None
    assert records.has_accepted("supervised_object", person)


def test_raw_bytes_are_kept_as_base64(engine: Engine) -> None:
    ledger = RejectionsLedger(engine, OfficialCalendar())
    found = ledger.get(ledger.add(rejected(raw=b"\xb2\xe2\xca\xd4")))
    assert found is not None and found.raw_payload == {"encoding": "base64", "data": "suLK1A=="}


# --- accepted records ---------------------------------------------------------------------------

def test_accepted_records_answer_duplicates_and_history(engine: Engine) -> None:
    records = AcceptedRecords(engine)
    records.add([accepted("r-i"), accepted("r-insp", INSPECTION_KEY, kind="inspection")])
    records.add([accepted("r-u", operation="u", at=T0 + timedelta(hours=1), fine="6000.00")])
    assert records.is_duplicate("r-i") and not records.is_duplicate("r-x")
    assert records.latest_for_key("penalty", key_hash("penalty", PENALTY_KEY)) == "r-u"
    assert records.latest_for_key("penalty", key_hash("penalty", ("X", "Y"))) is None
    assert records.has_accepted("penalty", PENALTY_KEY)
    assert not records.has_accepted("coercion", PENALTY_KEY)
    assert records.has_inspection(*INSPECTION_KEY)
    assert not records.has_inspection(INSPECTION_KEY[0], "JC-NONE")
    assert records.accepted_value("penalty", PENALTY_KEY, "fine_amount_yuan") == "6000.00"


def test_a_deleted_record_is_no_longer_accepted(engine: Engine) -> None:
    records = AcceptedRecords(engine)
    records.add([accepted("r-i"), accepted("r-d", operation="d", at=T0 + timedelta(hours=1))])
    assert not records.has_accepted("penalty", PENALTY_KEY)
    assert records.accepted_value("penalty", PENALTY_KEY, "fine_amount_yuan") is None


# --- the ingest transaction ---------------------------------------------------------------------

def test_ingest_batch_is_written_together_and_idempotently(engine: Engine) -> None:
    writer = IngestWriter(engine, OfficialCalendar())
    batch = ([accepted("r-1")], [rejected(("B", "1"))],
             [JourneyRow("r-1", "accepted", T0, envelope_id="env-1")], [queued("r-1")])
    writer.write(*batch)
    writer.write(batch[0], [], [], batch[3])  # the source re-sent it after a lost acknowledgement
    assert [count(engine, t) for t in (accepted_records, rejections, journeys, outbox)] == [1, 1, 1, 1]


def test_a_failure_mid_write_leaves_nothing_behind(engine: Engine) -> None:
    writer = IngestWriter(engine, OfficialCalendar())
    writer.write([], [rejected(record_id="r-old")], [], [])

    def fail_on_outbox(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO OUTBOX"):
            raise OperationalError(statement, parameters, Exception("disk I/O error"))

    event.listen(engine, "before_cursor_execute", fail_on_outbox)
    try:
        with pytest.raises(StoreUnavailable):
            writer.write([accepted("r-1")], [rejected(("B", "1"))], [JourneyRow("r-1", "queued", T0)],
                         [queued("r-1")])
    finally:
        event.remove(engine, "before_cursor_execute", fail_on_outbox)
    assert [count(engine, t) for t in (accepted_records, journeys, outbox)] == [0, 0, 0]
    assert [r.status for r in RejectionsLedger(engine, OfficialCalendar()).list()] == ["open"]


def test_database_failure_is_store_unavailable(tmp_path: Path) -> None:
    engine = create_engine_for(f"sqlite:///{tmp_path}/empty.db")  # no schema: every write fails
    with pytest.raises(StoreUnavailable, match="no such table"):
        IngestWriter(engine, OfficialCalendar()).write([accepted("r-1")], [], [], [])
    engine.dispose()


def stored(engine: Engine, table: str, columns: tuple[str, ...], where: str) -> list[tuple[Any, ...]]:
    """The columns as the database holds them: storage type and text of each value."""
    with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            cells = ", ".join(f"typeof({c}) || ':' || {c}" for c in columns)
        else:
            cells = ", ".join(f"pg_typeof({c})::text || ':' || CAST({c} AS TEXT)" for c in columns)
        return [tuple(row) for row in conn.execute(text(f"SELECT {cells} FROM {table} WHERE {where}"))]


def test_ingest_rows_are_stored_as_the_core_tables_store_them(engine: Engine) -> None:
    """The writer encodes values for the driver itself (JSON as UTF-8, times as UTC): what it stores
    must be what SQLAlchemy's column types store, for every reader of these tables."""
    at = datetime(2025, 9, 26, 18, 0, 0, 123456, tzinfo=ZoneInfo("Asia/Shanghai"))
    record = {"record_kind": "penalty", "operation": "u", "counterparty_name": "桐庐示例食品有限公司",
              "fine": Decimal("5000.10"), "nested": {"items": [1, 2.5, None, True, "〔2025〕"]}}
    IngestWriter(engine, OfficialCalendar()).write(
        [AcceptedRow(record_id="r-bulk", kind="penalty", business_key=PENALTY_KEY, record=record,
                     connector="batch-xihu", accepted_at=at, department="xihu-scj")],
        [rejected(("B", "1"), at=at, record_id="r-bulk-bad", raw=b"\xb2\xe2")],
        [JourneyRow("r-bulk", "accepted", at, envelope_id="env-1", detail={"location": "第 2 行", "errors": []}),
         JourneyRow("r-bulk", "queued", at, envelope_id="env-1", target="data_centre")],
        [OutboxRow(adapter="data_centre", record_id="r-bulk", kind="penalty", payload=record, enqueued_at=at),
         OutboxRow(adapter="national", record_id="r-bulk", kind="penalty", payload=dict(record), enqueued_at=at)])
    RejectionsLedger(engine, OfficialCalendar()).add(rejected(("C", "1"), at=at, record_id="r-core-bad",
                                                              raw=b"\xb2\xe2"))
    with engine.begin() as conn:
        conn.execute(accepted_records.insert(), {
            "record_id": "r-core", "kind": "penalty", "business_key_hash": "h", "operation": "u",
            "connector": "batch-xihu", "record": record, "accepted_at": at})
        conn.execute(journeys.insert(), [
            {"record_id": "r-core", "envelope_id": "env-1", "event": "accepted", "at": at,
             "detail": {"location": "第 2 行", "errors": []}},
            {"record_id": "r-core", "envelope_id": "env-1", "event": "queued", "target": "data_centre", "at": at,
             "detail": None}])
    columns = ("record", "accepted_at", "operation")
    assert stored(engine, "accepted_records", columns, "record_id = 'r-bulk'") == stored(
        engine, "accepted_records", columns, "record_id = 'r-core'")
    assert stored(engine, "accepted_records", ("record",), "record_id = 'r-bulk'")[0][0].split(":")[0] in (
        "text", "jsonb")
    # The record accepted in the same write is stored once; a payload of its own is stored as is.
    assert stored(engine, "outbox", ("payload",), "record_id = 'r-bulk' AND adapter = 'data_centre'") == [(None,)]
    assert stored(engine, "outbox", ("payload",), "record_id = 'r-bulk' AND adapter = 'national'") == stored(
        engine, "accepted_records", ("record",), "record_id = 'r-core'")
    claimed = [item.payload for adapter in ("data_centre", "national")
               for item in SqlOutbox(engine).claim(adapter, 10, at)]
    assert claimed == [json.loads(json.dumps(record, default=str))] * 2
    journey_columns = ("event", "detail", "at")
    assert stored(engine, "journeys", journey_columns, "record_id = 'r-bulk' ORDER BY id") == stored(
        engine, "journeys", journey_columns, "record_id = 'r-core' ORDER BY id")
    rejection_columns = ("raw_payload", "errors", "warnings", "rejected_at", "due_on", "status", "location")
    assert stored(engine, "rejections", rejection_columns, "record_id = 'r-bulk-bad'") == stored(
        engine, "rejections", rejection_columns, "record_id = 'r-core-bad'")
    found = AcceptedRecords(engine).accepted_value("penalty", PENALTY_KEY, "counterparty_name")
    assert found == "桐庐示例食品有限公司"


def test_an_item_queued_with_its_accepted_record_reads_it_back_everywhere(engine: Engine) -> None:
    """Ingest stores a record once (the outbox row has no copy): claims of more records than one
    lookup takes, the relay's reads, ``get`` and dead letters all give the accepted record."""
    writer = IngestWriter(engine, OfficialCalendar())
    batch = writer.batch()
    for n in range(620):
        record = {"record_id": f"r-{n}", "n": n, "名称": "桐庐示例"}
        digest = batch.accept(f"r-{n}", "penalty", (f"K{n}", "1"), record, connector="c", accepted_at=T0)
        batch.queue("dc", f"r-{n}", "penalty", record, T0, business_key_hash=digest)
    writer.write_batch(batch)
    box = SqlOutbox(engine)
    expected = [{"record_id": f"r-{n}", "n": n, "名称": "桐庐示例"} for n in range(620)]
    assert [item.payload for item in box.pending_rows(1000)] == expected
    claimed = box.claim("dc", 700, T0)
    assert [item.payload for item in claimed] == expected
    box.dead([claimed[7].id], "refused")
    got = box.get(claimed[7].id)
    assert got is not None and got.payload == expected[7]
    assert [item.payload for item in box.dead_letters(DeadLetterFilter(adapter="dc"))] == [expected[7]]


def test_the_store_writes_every_step_of_an_envelope_in_order(engine: Engine) -> None:
    from gateway.durable import SqlGatewayStore
    from gateway.envelope import Envelope
    from gateway.ingest import RecordOutcome, Status

    def outcome(status: Status, record_id: str, key: tuple[str, ...], location: str,
                errors: tuple[Finding, ...] = ()) -> RecordOutcome:
        record = {"record_id": record_id, "source_record_id": f"src-{record_id}", "operation": "i"}
        return RecordOutcome(status=status, index=0, kind="penalty", record=record, record_id=record_id,
                             business_key=key, errors=errors, warnings=(), location=location,
                             source={"row": location})

    store = SqlGatewayStore(engine, OfficialCalendar())
    envelope = Envelope(connector="batch-xihu", payload=[], received_at=T0, department="xihu-scj",
                        envelope_id="env-7")
    outcomes = [outcome("accepted", "r-a", ("A", "1"), "row 1"),
                outcome("rejected", "r-b", ("B", "1"), "row 2", (ERROR,)),
                outcome("duplicate", "r-c", ("C", "1"), "row 3"),
                outcome("accepted", "r-d", ("D", "1"), "row 4")]
    store.write(envelope, outcomes, lambda kind: ("data_centre", "national"))
    steps = [(s.record_id, s.event, s.target, s.detail) for s in store.journeys.for_envelope("env-7")]
    assert steps == [  # at one moment, the steps kept in the records' rows before the journeys rows
        (None, "received", None, {"connector": "batch-xihu", "records": 4}),
        ("r-a", "accepted", None, {"location": "row 1", "errors": []}),
        ("r-a", "queued", "data_centre", None), ("r-a", "queued", "national", None),
        ("r-d", "accepted", None, {"location": "row 4", "errors": []}),
        ("r-d", "queued", "data_centre", None), ("r-d", "queued", "national", None),
        ("r-b", "rejected", None, {"location": "row 2", "errors": ["REQUIRED"]}),
        ("r-c", "duplicate", None, {"location": "row 3", "errors": []})]
    for adapter in ("data_centre", "national"):
        items = store.claim(adapter, 10, T0 + timedelta(seconds=1))
        assert [(i.record_id, i.payload["source_record_id"], i.enqueued_at, i.department,
                 i.business_key_hash) for i in items] == [
            ("r-a", "src-r-a", T0, "xihu-scj", key_hash("penalty", ("A", "1"))),
            ("r-d", "src-r-d", T0, "xihu-scj", key_hash("penalty", ("D", "1")))]
    [rejection] = store.rejections.list()
    assert (rejection.record_id, rejection.source_record_id, rejection.raw_payload, rejection.location,
            rejection.department) == ("r-b", "src-r-b", {"row": "row 2"}, "row 2", "xihu-scj")
    assert store.records.is_duplicate("r-a") and not store.records.is_duplicate("r-c")
    assert store.totals() == {"accepted": 2, "rejected": 1, "duplicate": 1}


def test_queued_steps_stored_with_the_accepted_one_read_as_steps_of_their_own(engine: Engine) -> None:
    """Ingest keeps an accepted record's "accepted" step, and the "queued" ones in it, in the record's
    accepted_records row; journeys and a department's submissions read them as the journeys rows
    written before (which still read the same)."""
    from gateway.durable import SqlGatewayStore
    from gateway.envelope import Envelope
    from gateway.ingest import RecordOutcome
    from gateway.stores.submissions import Submissions

    store = SqlGatewayStore(engine, OfficialCalendar())
    record = {"record_id": "r-new", "source_record_id": "src-new", "operation": "i"}
    store.write(Envelope(connector="batch-xihu", payload=[], received_at=T0, department="xihu-scj",
                         envelope_id="env-new"),
                [RecordOutcome(status="accepted", index=0, kind="penalty", record=record, record_id="r-new",
                               business_key=("N", "1"), errors=(), warnings=(), location="row 1", source={})],
                lambda kind: ("data_centre", "national"))
    assert count(engine, journeys) == 1  # received; the accepted step (and its two queued ones) is in the record's row
    at = store.journeys.for_record("r-new")[0].at
    store.journeys.append_many([  # as ingest wrote them before
        JourneyRow("r-old", "accepted", at, envelope_id="env-new", detail={"location": "row 1", "errors": []}),
        JourneyRow("r-old", "queued", at, envelope_id="env-new", target="data_centre"),
        JourneyRow("r-old", "queued", at, envelope_id="env-new", target="national")])
    store.journeys.append("r-new", "delivered", target="national", at=at + timedelta(seconds=1))

    def steps(record_id: str) -> list[tuple[Any, ...]]:
        return [(s.envelope_id, s.event, s.target, s.detail, s.at) for s in store.journeys.for_record(record_id)]

    assert steps("r-new")[:3] == steps("r-old") == [
        ("env-new", "accepted", None, {"location": "row 1", "errors": []}, at),
        ("env-new", "queued", "data_centre", None, at), ("env-new", "queued", "national", None, at)]
    assert steps("r-new")[3][1:3] == ("delivered", "national")
    [submission] = Submissions(engine).recent("xihu-scj")
    assert submission.deliveries == {"data_centre": "queued", "national": "delivered"}


# --- journeys -----------------------------------------------------------------------------------

def test_journey_of_a_record_in_order(engine: Engine) -> None:
    log = JourneyLog(engine)
    log.append("r-1", "received", envelope_id="env-1", at=T0)
    log.append_many([JourneyRow("r-1", "delivered", T0 + timedelta(seconds=2), target="data_centre",
                                detail={"cd_batch": "2025092600001"}),
                     JourneyRow("r-1", "queued", T0 + timedelta(seconds=1), target="data_centre"),
                     JourneyRow("r-2", "received", T0)])
    steps = log.for_record("r-1")
    assert [s.event for s in steps] == ["received", "queued", "delivered"]
    assert steps[2].detail == {"cd_batch": "2025092600001"} and steps[2].at == T0 + timedelta(seconds=2)
    assert [s.record_id for s in log.for_envelope("env-1")] == ["r-1"]


# --- outbox -------------------------------------------------------------------------------------

def test_outbox_claim_lease_and_outcomes(engine: Engine) -> None:
    box = SqlOutbox(engine, lease_s=60)
    box.put_many([queued(f"r-{i}") for i in range(5)] + [queued("r-x", adapter="national")])
    box.put_many([queued("r-0")])  # queued twice: still one item
    assert box.depth("data_centre") == 5
    first = box.claim("data_centre", 3, T0)
    assert [i.record_id for i in first] == ["r-0", "r-1", "r-2"]
    assert all(i.state == "inflight" and i.attempts == 1 for i in first)
    assert first[0].payload == {"record_id": "r-0"} and first[0].department == "xihu-scj"
    assert [i.record_id for i in box.claim("data_centre", 10, T0)] == ["r-3", "r-4"]
    assert box.claim("data_centre", 10, T0 + timedelta(seconds=30)) == []
    box.complete([first[0].id])
    box.retry([first[1].id], T0 + timedelta(seconds=10), "HTTP 503")
    box.dead([first[2].id], "HTTP 400")
    assert box.depth("data_centre") == 3  # r-1 pending, r-3 and r-4 in flight
    retried = box.claim("data_centre", 10, T0 + timedelta(seconds=10))
    assert [(i.record_id, i.attempts, i.last_error) for i in retried] == [("r-1", 2, "HTTP 503")]
    expired = box.claim("data_centre", 10, T0 + timedelta(seconds=61))  # the worker of r-3, r-4 died
    assert [i.record_id for i in expired] == ["r-3", "r-4"]
    dead = box.get(first[2].id)
    assert dead is not None and (dead.state, dead.last_error) == ("dead", "HTTP 400")
    box.redrive([first[2].id], T0 + timedelta(seconds=65))
    again = box.claim("data_centre", 10, T0 + timedelta(seconds=65))
    assert [(i.record_id, i.attempts) for i in again] == [("r-2", 1)]
    assert [i.record_id for i in box.claim("national", 10, T0)] == ["r-x"]


def test_outbox_claims_do_not_overlap(engine: Engine) -> None:
    box = SqlOutbox(engine)
    box.put_many([queued(f"r-{i:02}") for i in range(40)])
    seen = [i.record_id for _ in range(5) for i in box.claim("data_centre", 10, T0)]
    assert sorted(seen) == [f"r-{i:02}" for i in range(40)]


# --- cd_batch sequences -------------------------------------------------------------------------

def test_batch_sequence_per_target_and_day(engine: Engine) -> None:
    sequence = SqlBatchSequence(engine)
    day = date(2025, 6, 20)
    assert [sequence.next_value("dc", day) for _ in range(3)] == [1, 2, 3]
    assert sequence.next_value("dc", day + timedelta(days=1)) == 1
    assert sequence.next_value("other", day) == 1
    assert sequence.next_value("dc", day) == 4


def test_schema_is_created_once_and_again_without_error(engine: Engine) -> None:
    init_schema(engine)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM outbox")).scalar_one() == 0


# -- ingest's snapshot: each business key's latest version ---------------------------------------

V0 = datetime(2025, 6, 1, tzinfo=UTC)


def versions() -> list[AcceptedRow]:
    """k0: 300 versions, the last one deletes it; k1: three versions accepted at the same moment
    (one envelope), the tie broken by record id as before (c, a deletion); k2: one insert."""
    rows = [AcceptedRow(f"k0-{i:03d}", "penalty", ("k0",), {"operation": "d" if i == 299 else "u"}, "eco",
                        V0 + timedelta(seconds=i)) for i in range(300)]
    later = V0 + timedelta(days=1)
    rows += [AcceptedRow(rid, "penalty", ("k1",), {"operation": op}, "eco", later)
             for rid, op in (("a", "u"), ("c", "d"), ("b", "u"))]
    rows.append(AcceptedRow("k2-0", "penalty", ("k2",), {"operation": "i"}, "eco", V0))
    rows.append(AcceptedRow("other", "license", ("k2",), {"operation": "d"}, "eco", later))  # another kind
    return rows


def test_the_snapshot_gives_each_keys_latest_version(engine: Engine) -> None:
    records = AcceptedRecords(engine)
    records.add(versions())
    keys = [("penalty", (k,)) for k in ("k0", "k1", "k2", "missing")]
    view = records.snapshot(["k0-000", "nope"], keys)
    assert [view.has_accepted(kind, key) for kind, key in keys] == [False, False, True, False]
    # the same answers as the store's one-key lookup
    assert [records.has_accepted(kind, key) for kind, key in keys] == [False, False, True, False]
    assert view.is_duplicate("k0-000") and not view.is_duplicate("nope")
    records.add([AcceptedRow("k0-300", "penalty", ("k0",), {"operation": "u"}, "eco", V0 + timedelta(days=2))])
    assert records.snapshot([], keys[:1]).has_accepted("penalty", ("k0",))  # updated again after the deletion
