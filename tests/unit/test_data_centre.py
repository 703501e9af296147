"""The data-centre adapter on SQLite, and its tables against the 前置库's ddl.sql.

ddl.sql and samples/rows.sql are copies of shared/sources/data-centre/ (tests/data/data_centre/).
tests/integration/test_stores_postgres.py runs the same adapter against PostgreSQL.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError
from sqlalchemy import Engine, create_engine, func, select, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import IntegrityError

from adapters.base import Adapter, DeliveryResult, OutboundRecord
from adapters.data_centre import DataCentreAdapter, DataCentreConfig, exchange_tables, format_batch
from gateway.errors import ConfigError, TargetUnavailable

DATA = Path(__file__).resolve().parent.parent / "data"
DDL = DATA / "data_centre" / "ddl.sql"
ROWS = DATA / "data_centre" / "rows.sql"
VALID = DATA / "standard" / "records" / "valid"
NOW = datetime(2025, 6, 20, 10, 5, 2, 123456, tzinfo=UTC)  # 18:05:02 in Shanghai


# --- ddl.sql and samples/rows.sql, parsed --------------------------------------------------------

def ddl_tables() -> dict[str, list[tuple[str, str, bool]]]:
    """table -> [(column, type, not null)] in ddl.sql order."""
    tables = {}
    for name, body in re.findall(r"CREATE TABLE (\w+) \((.*?)\n\);", DDL.read_text(encoding="utf-8"), re.S):
        columns = []
        for line in body.strip().splitlines():
            line = line.strip().rstrip(",")
            if line.startswith("CONSTRAINT"):
                continue
            column, rest = line.split(None, 1)
            sql = rest.split(" NOT NULL")[0].split(" DEFAULT")[0].strip()
            columns.append((column, sql, "NOT NULL" in rest or sql == "bigserial"))  # bigserial: the PK
        tables[name] = columns
    return tables


_PG_NAMES = {"timestamp(0) without time zone": "timestamp(0)", "timestamp with time zone": "timestamptz",
             "bigserial": "bigint"}


def normalised(sql: str) -> str:
    sql = sql.lower()
    return _PG_NAMES.get(sql, sql).replace(" ", "")


_VALUE = re.compile(r"\s*(?:'((?:[^']|'')*)'(::jsonb)?|(NULL)|(true|false)|(-?\d+(?:\.\d+)?))\s*(?:,|$)")


def sample_rows() -> list[tuple[str, dict[str, Any]]]:
    """(table, {column: value}) of every INSERT in rows.sql, values as Python (jsonb parsed)."""
    rows = []
    sql = ROWS.read_text(encoding="utf-8")
    statements = re.findall(r"INSERT INTO (\w+) \(([^)]*)\)\nVALUES \((.*?)\);\n", sql)
    for table, columns, values in statements:
        parsed: list[Any] = []
        for m in _VALUE.finditer(values):
            quoted, jsonb, null, boolean, number = m.groups()
            if quoted is not None:
                quoted = quoted.replace("''", "'")
                parsed.append(json.loads(quoted) if jsonb else quoted)
            else:
                parsed.append(None if null else boolean == "true" if boolean else number)
        names = [c.strip() for c in columns.split(",")]
        assert len(names) == len(parsed), table
        rows.append((table, dict(zip(names, parsed, strict=True))))
    return rows


def record_from_sample(table: str, row: dict[str, Any]) -> OutboundRecord:
    """The standard record that the sample row was written from."""
    record = {k: v for k, v in row.items() if not k.startswith("cd_") and k != "record_unique_identity"}
    record.update(record_id=row["cd_id"], operation=row["cd_operation"], record_kind=table[3:],
                  source_record_id=row["record_unique_identity"])
    return OutboundRecord(row["cd_id"], table[3:], record, department="xihu-scj")


def valid_records() -> list[OutboundRecord]:
    out = []
    for path in sorted(VALID.glob("*.json")):
        record = json.loads(path.read_text(encoding="utf-8"))
        out.append(OutboundRecord(record["record_id"], record["record_kind"], record, department="d"))
    return out


# --- fixtures -----------------------------------------------------------------------------------

class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def target_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/qzk/exchange.db"


@pytest.fixture
async def adapter(target_url: str, clock: Clock) -> Any:
    adapter = DataCentreAdapter(DataCentreConfig(url=SecretStr(target_url), create_tables=True), clock=clock)
    yield adapter
    await adapter.close()


@pytest.fixture
def target(target_url: str) -> Iterator[Engine]:
    engine = create_engine(target_url)
    yield engine
    engine.dispose()


def rows_of(engine: Engine, kind: str) -> list[dict[str, Any]]:
    table = exchange_tables().kinds[kind]
    with engine.connect() as conn:
        stmt = select(table).order_by(table.c.cd_batch, table.c.cd_id)
        return [dict(r) for r in conn.execute(stmt).mappings()]


def penalty(**changes: Any) -> OutboundRecord:
    record = json.loads((VALID / "penalty.json").read_text(encoding="utf-8"))
    record.update(changes)
    return OutboundRecord(record["record_id"], "penalty", record, department="xihu-scj")


# --- the tables ---------------------------------------------------------------------------------

def test_every_ddl_column_is_in_the_tables_with_its_type_and_nullability() -> None:
    tables = exchange_tables()
    ours = {t.name: t for t in [*tables.kinds.values(), tables.feedback]}
    expected = ddl_tables()
    assert set(ours) == set(expected) and len(expected) == 14
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    for name, columns in expected.items():
        table = ours[name]
        assert [c.name for c in table.columns] == [c for c, _, _ in columns], name
        for column, sql, not_null in columns:
            mine = table.c[column]
            assert normalised(str(mine.type.compile(dialect=dialect))) == normalised(sql), (name, column)
            assert mine.nullable is not not_null, (name, column)


def test_tables_carry_the_ddl_indexes_and_checks() -> None:
    penalty_table = exchange_tables().kinds["penalty"]
    assert {i.name for i in penalty_table.indexes} == {
        "ix_ex_penalty_batch", "ix_ex_penalty_time", "ix_ex_penalty_bk", "ix_ex_penalty_rui"}
    bk = next(i for i in penalty_table.indexes if i.name == "ix_ex_penalty_bk")
    assert [c.name for c in bk.columns] == ["implementing_org_uscc", "decision_doc_no", "cd_time"]
    assert {c.name for c in penalty_table.constraints} >= {
        "pk_ex_penalty", "ck_ex_penalty_op", "ck_ex_penalty_batch", "ck_ex_penalty_source"}


def test_batch_number_format() -> None:
    assert format_batch(date(2019, 4, 11), 2) == "2019041100002"
    with pytest.raises(ValueError, match="out of range"):
        format_batch(date(2019, 4, 11), 100_000)


# --- delivery -----------------------------------------------------------------------------------

def test_the_adapter_implements_the_plugin_protocol(adapter: DataCentreAdapter) -> None:
    assert isinstance(adapter, Adapter) and adapter.name == "data_centre"


async def test_one_row_per_kind_from_the_valid_records(adapter: DataCentreAdapter, target: Engine) -> None:
    records = valid_records()
    results = await adapter.deliver(records)
    assert [(r.record_id, r.status) for r in results] == [(r.record_id, "delivered") for r in records]
    assert results[0].receipt == {"table": "ex_coercion", "cd_batch": "2025062000001",
                                  "cd_time": "2025-06-20T18:05:02+08:00"}
    for record in records:
        stored = [r for r in rows_of(target, record.kind) if r["cd_id"] == record.record_id]
        assert len(stored) == 1, record.kind
    row = rows_of(target, "penalty")[0]
    assert row["cd_time"] == datetime(2025, 6, 20, 18, 5, 2)
    assert (row["cd_source"], row["cd_batch"], row["cd_operation"]) == (
        "330000|11330106002500121C", "2025062000001", "i")
    assert row["record_unique_identity"] == "XH-CF-2025-000118"
    assert row["fine_amount_yuan"] == Decimal("5000.00")
    assert row["penalty_types"] == ["警告", "罚款"]
    assert row["decided_at"] == date(2025, 6, 18) and row["hearing_held"] is False
    assert row["submitted_at"] == datetime.fromisoformat("2025-06-20T18:05:00+08:00")
    assert row["submitted_at"].utcoffset() is not None


async def test_same_record_twice_is_one_row(adapter: DataCentreAdapter, target: Engine) -> None:
    first = await adapter.deliver([penalty(), penalty()])
    again = await adapter.deliver([penalty()])
    assert [r.status for r in first] == ["delivered", "delivered"]
    assert again == [DeliveryResult(penalty().record_id, "delivered", code="DUPLICATE", receipt={
        "table": "ex_penalty", "cd_batch": "2025062000001", "duplicate": True})]
    assert len(rows_of(target, "penalty")) == 1


async def test_a_batch_mixing_known_and_new_records_writes_only_the_new(adapter: DataCentreAdapter,
                                                                       target: Engine) -> None:
    # On PostgreSQL the bulk COPY fails on the known row and the batch is written again without it.
    await adapter.deliver([penalty()])
    fresh = penalty(record_id="00000000-0000-4000-8000-0000000000b1")
    results = await adapter.deliver([penalty(), fresh])
    assert [(r.status, r.code) for r in results] == [("delivered", "DUPLICATE"), ("delivered", None)]
    assert sorted(r["cd_id"] for r in rows_of(target, "penalty")) == sorted([penalty().record_id, fresh.record_id])


async def test_cd_batch_sequence_per_day(adapter: DataCentreAdapter, target: Engine, clock: Clock) -> None:
    await adapter.deliver([penalty(record_id="00000000-0000-4000-8000-0000000000a1")])
    await adapter.deliver([penalty(record_id="00000000-0000-4000-8000-0000000000a2"),
                           penalty(record_id="00000000-0000-4000-8000-0000000000a3")])
    clock.now = datetime(2025, 6, 20, 16, 30, tzinfo=UTC)  # already 06-21 in Shanghai
    await adapter.deliver([penalty(record_id="00000000-0000-4000-8000-0000000000a4")])
    assert [r["cd_batch"] for r in rows_of(target, "penalty")] == [
        "2025062000001", "2025062000002", "2025062000002", "2025062100001"]


async def test_sample_rows_are_written_as_in_the_samples(adapter: DataCentreAdapter, target: Engine) -> None:
    samples = [(t, r) for t, r in sample_rows() if t != "ex_feedback"]
    results = await adapter.deliver([record_from_sample(t, r) for t, r in samples])
    assert {r.status for r in results} == {"delivered"}
    for table, sample in samples:
        stored = next(r for r in rows_of(target, table[3:]) if r["cd_id"] == sample["cd_id"])
        assert stored["cd_source"] == sample["cd_source"]
        for column, value in sample.items():
            if column in ("cd_time", "cd_batch"):
                continue
            got = stored[column]
            if isinstance(got, datetime):  # PostgreSQL gives the instant in the session's zone
                value = datetime.fromisoformat(value)
            elif isinstance(got, date | Decimal):
                got = str(got)
            assert got == value, (table, column)


async def test_a_deletion_row_carries_only_common_and_key_fields(adapter: DataCentreAdapter,
                                                                 target: Engine) -> None:
    record = {k: v for k, v in penalty().record.items() if k in {
        "record_kind", "source_record_id", "provider_uscc", "admin_division_code", "submitted_at",
        "received_at", "connector", "standard_version", "implementing_org_uscc", "decision_doc_no"}}
    record.update(record_id="00000000-0000-4000-8000-0000000000d1", operation="d")
    [result] = await adapter.deliver([OutboundRecord(record["record_id"], "penalty", record)])
    assert result.status == "delivered"
    [row] = rows_of(target, "penalty")
    assert row["cd_operation"] == "d" and row["fine_amount_yuan"] is None


async def test_bad_rows_are_rejected_and_the_rest_written(adapter: DataCentreAdapter, target: Engine) -> None:
    too_long = penalty(record_id="00000000-0000-4000-8000-0000000000b1", penalty_result="罚" * 1001)
    no_key = penalty(record_id="00000000-0000-4000-8000-0000000000b2", decision_doc_no=None)
    bad_uscc = penalty(record_id="00000000-0000-4000-8000-0000000000b3", provider_uscc="bad")
    good = penalty(record_id="00000000-0000-4000-8000-0000000000b4")
    unknown = OutboundRecord("00000000-0000-4000-8000-0000000000b5", "weather", {})
    results = {r.record_id: r for r in await adapter.deliver([too_long, no_key, bad_uscc, good, unknown])}
    assert (results[too_long.record_id].status, results[too_long.record_id].code) == ("rejected", "DC002")
    assert "penalty_result" in (results[too_long.record_id].message or "")
    refused = results[no_key.record_id]
    assert (refused.status, refused.code) == ("rejected", "TARGET_CONSTRAINT")
    assert results[bad_uscc.record_id].status == "rejected"
    assert results[good.record_id].status == "delivered"
    assert (results[unknown.record_id].status, results[unknown.record_id].code) == ("failed", "KIND_UNROUTED")
    assert [(r["cd_id"], r["cd_batch"]) for r in rows_of(target, "penalty")] == [
        (good.record_id, "2025062000001")]


async def test_configured_codes_make_cd_source(target_url: str, target: Engine) -> None:
    config = DataCentreConfig(url=SecretStr(target_url), create_tables=True, province_code="330000",
                              department_code="11330000002482448M")
    adapter = DataCentreAdapter(config, clock=Clock(NOW))
    await adapter.deliver([penalty()])
    await adapter.close()
    assert rows_of(target, "penalty")[0]["cd_source"] == "330000|11330000002482448M"


async def test_an_injected_sequence_numbers_the_batches(target_url: str, target: Engine) -> None:
    taken: list[tuple[str, date]] = []

    class Sequence:
        def next_value(self, name: str, day: date) -> int:
            taken.append((name, day))
            return 41

    config = DataCentreConfig(url=SecretStr(target_url), create_tables=True, target="dc-zj")
    adapter = DataCentreAdapter(config, sequence=Sequence(), clock=Clock(NOW))
    await adapter.deliver([penalty()])
    await adapter.close()
    assert taken == [("dc-zj", date(2025, 6, 20))]
    assert rows_of(target, "penalty")[0]["cd_batch"] == "2025062000041"
    with target.connect() as conn:  # the embedded sequence table was not used
        assert conn.execute(text("SELECT count(*) FROM cd_batch_sequences")).scalar_one() == 0


async def test_unavailable_target_or_sequence_means_retry(adapter: DataCentreAdapter, target: Engine,
                                                          target_url: str) -> None:
    await adapter.deliver([penalty()])
    with target.begin() as conn:
        conn.execute(text("DROP TABLE ex_penalty"))
    [result] = await adapter.deliver([penalty(record_id="00000000-0000-4000-8000-0000000000c1")])
    assert (result.status, result.code) == ("retry", "TARGET_UNAVAILABLE")

    class Down:
        def next_value(self, name: str, day: date) -> int:
            raise TargetUnavailable("stores down", retry_after_s=5)

    other = DataCentreAdapter(DataCentreConfig(url=SecretStr(target_url)), sequence=Down())
    [result] = await other.deliver([penalty()])
    await other.close()
    assert (result.status, result.retry_after_s) == ("retry", 5)


def test_config_is_strict(target_url: str) -> None:
    with pytest.raises(ValidationError):
        DataCentreConfig(url=SecretStr(target_url), provnce_code="330000")  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        DataCentreConfig(url=SecretStr(target_url), department_code="lower-case")
    with pytest.raises(ConfigError, match="sequence"):
        DataCentreAdapter(DataCentreConfig(url=SecretStr(target_url)))
    assert "secret" not in repr(DataCentreConfig(url=SecretStr("postgresql://sgw_zj:secret@db/qzk_jgsjzx")))


async def test_empty_batch(adapter: DataCentreAdapter, target: Engine) -> None:
    assert await adapter.deliver([]) == []
    with target.connect() as conn:
        assert conn.execute(select(func.count()).select_from(text("sqlite_master"))).scalar_one() == 0


# --- the writes -----------------------------------------------------------------------------------

async def test_a_batch_takes_its_number_only_when_it_is_written(adapter: DataCentreAdapter, target: Engine) -> None:
    """The cd_batch sequence kept in the 前置库 is bumped in the transaction that writes the batch:
    a batch refused whole, or whose write fails, takes no number."""
    [refused] = await adapter.deliver([penalty(record_id="00000000-0000-4000-8000-0000000000c1", operation="x")])
    assert (refused.status, refused.code) == ("rejected", "DC002") and "operation" in (refused.message or "")
    await adapter.deliver([penalty(record_id="00000000-0000-4000-8000-0000000000c2")])
    with target.begin() as conn:  # a table the rows do not fit: the write fails
        conn.execute(text("ALTER TABLE ex_penalty RENAME TO ex_penalty_kept"))
        conn.execute(text("CREATE TABLE ex_penalty (cd_id VARCHAR(100) PRIMARY KEY)"))
    [failed] = await adapter.deliver([penalty(record_id="00000000-0000-4000-8000-0000000000c3")])
    assert (failed.status, failed.code) == ("retry", "TARGET_UNAVAILABLE")
    with target.begin() as conn:
        conn.execute(text("DROP TABLE ex_penalty"))
        conn.execute(text("ALTER TABLE ex_penalty_kept RENAME TO ex_penalty"))
    [written] = await adapter.deliver([penalty(record_id="00000000-0000-4000-8000-0000000000c4")])
    assert written.receipt is not None and written.receipt["cd_batch"] == "2025062000002"
    assert [r["cd_batch"] for r in rows_of(target, "penalty")] == ["2025062000001", "2025062000002"]


async def test_records_of_several_layouts_and_any_text_in_one_batch(adapter: DataCentreAdapter,
                                                                    target: Engine) -> None:
    awkward = "罚\t款\n\\N \\. 结束\r'\""
    full = penalty(record_id="00000000-0000-4000-8000-0000000000d1", penalty_result=awkward)
    fewer = penalty(record_id="00000000-0000-4000-8000-0000000000d2")
    fewer = OutboundRecord(fewer.record_id, "penalty", {k: v for k, v in fewer.record.items()
                                                        if k not in ("penalty_types", "fine_amount_yuan")})
    odd = penalty(record_id="00000000-0000-4000-8000-0000000000d3", penalty_types=[], entrusted_org_name=None,
                  closed_at="20250619", submitted_at="2025-06-20T10:05:00.5Z", ext={"local": "x"})
    results = await adapter.deliver([full, fewer, odd, penalty(record_id="00000000-0000-4000-8000-0000000000d4")])
    assert {(r.status, r.code) for r in results} == {("delivered", None)}
    stored = {r["cd_id"]: r for r in rows_of(target, "penalty")}
    assert stored[full.record_id]["penalty_result"] == awkward
    assert stored[full.record_id]["penalty_types"] == ["警告", "罚款"]
    assert stored[fewer.record_id]["penalty_types"] is None and stored[fewer.record_id]["fine_amount_yuan"] is None
    assert stored[fewer.record_id]["decision_doc_no"] == full.record["decision_doc_no"]
    assert stored[odd.record_id]["penalty_types"] is None and stored[odd.record_id]["entrusted_org_name"] is None
    assert stored[odd.record_id]["closed_at"] == date(2025, 6, 19)
    assert stored[odd.record_id]["submitted_at"] == datetime(2025, 6, 20, 10, 5, 0, 500000, tzinfo=UTC)
    assert {(r["cd_batch"], r["cd_time"], r["cd_source"]) for r in stored.values()} == {
        ("2025062000001", datetime(2025, 6, 20, 18, 5, 2), "330000|11330106002500121C")}


async def test_absent_values_are_null(adapter: DataCentreAdapter, target: Engine) -> None:
    record = {k: v for k, v in penalty().record.items() if k != "penalty_types"}
    await adapter.deliver([OutboundRecord(record["record_id"], "penalty", record),
                           penalty(record_id="00000000-0000-4000-8000-0000000000d5", penalty_types=[])])
    with target.connect() as conn:
        nulls = conn.execute(text("SELECT penalty_types IS NULL, fine_paid_yuan IS NULL FROM ex_penalty")).all()
    assert [tuple(map(bool, row)) for row in nulls] == [(True, True), (True, True)]


async def test_writes_of_others_keep_the_check_constraints(adapter: DataCentreAdapter) -> None:
    """On SQLite the rows are inserted without evaluating the table's CHECK (the builder admits only
    i, u and d): that stays confined to them."""
    await adapter.deliver([penalty()])
    feedback = exchange_tables().feedback
    with pytest.raises(IntegrityError), adapter._engine.begin() as conn:
        conn.execute(feedback.insert(), {"cd_id": "x", "table_name": "ex_penalty", "status": "rejected",
                                         "checked_at": NOW})  # a rejection needs its error code
