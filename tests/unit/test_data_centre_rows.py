"""The data centre's row builder: rows built from a learnt record layout are the rows built field by
field, and a record either builds the same way or is refused for the same field and reason."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest

from adapters.data_centre.columns import TEXT_TYPES, FieldColumn, kind_columns
from adapters.data_centre.rows import RowBuilder, RowError
from adapters.data_centre.tables import exchange_tables

VALID = Path(__file__).resolve().parent.parent / "data" / "standard" / "records" / "valid"
CD_TIME = "2025-06-20 18:05:02"
DIALECTS = ("postgresql", "sqlite")


def builder(kind: str, dialect: str, **options: Any) -> RowBuilder:
    table = exchange_tables().kinds[kind]
    return RowBuilder([c.name for c in table.columns], kind_columns()[kind], dialect, province_code=None,
                      department_code=None, **options)


def outcome(rows: RowBuilder, record: dict[str, Any]) -> dict[str, Any] | tuple[str, str]:
    """{column: value} of the values the row writes (absent ones omitted), or the refusal."""
    try:
        columns, row = rows.build(record, CD_TIME)
    except RowError as exc:
        return exc.field, exc.reason
    assert columns[-1] == "cd_batch" and row[-1] is None
    return {column: value for column, value in zip(columns, row, strict=True) if value is not None}


def valid_records() -> list[dict[str, Any]]:
    return [json.loads(path.read_text(encoding="utf-8")) for path in sorted(VALID.glob("*.json"))]


def wrong_values(column: FieldColumn | None) -> list[Any]:
    """Values that are absent, of another type or out of range for ``column`` (None: any field)."""
    values: list[Any] = [None, "", [], {}, 0, 7, True, False, 1.5, "x", ["a"], {"a": 1}, "x" * 2001,
                         "2025-13-01", "2025-06-20T18:05:00", "2025-06-20T18:05:00-00:00",
                         "2025-06-20T18:05:00.120+08:00", "2025-W25-5", "20250620", "1e3", " 12 ", "NaN",
                         "a\tb\nc\\d\re", "罚" * 1001]
    if column is not None and column.length is not None and column.type in TEXT_TYPES:
        values += ["9" * column.length, "9" * (column.length + 1)]
    return values


def variants(record: dict[str, Any], columns: dict[str, FieldColumn]) -> Iterator[dict[str, Any]]:
    yield record
    for field in record:
        yield {k: v for k, v in record.items() if k != field}
        for value in wrong_values(columns.get(field)):
            yield record | {field: value}
    yield record | {"not_a_standard_field": "x"}
    for name in columns:
        if name not in record:
            for value in wrong_values(columns[name])[:12]:
                yield record | {name: value}


@pytest.mark.parametrize("dialect", DIALECTS)
def test_rows_of_a_learnt_layout_are_the_rows_built_field_by_field(dialect: str) -> None:
    compared = 0
    for record in valid_records():
        kind = record["record_kind"]
        quick, by_field = builder(kind, dialect), builder(kind, dialect, max_layouts=0)
        columns = {c.name: c for c in kind_columns()[kind]}
        for variant in variants(record, columns):
            # Twice: the first learns the layout (and remembers parsed values), the second uses them.
            assert outcome(quick, variant) == outcome(by_field, variant), (kind, variant)
            assert outcome(quick, variant) == outcome(by_field, variant), (kind, variant)
            compared += 1
    assert compared > 5_000


def built_one_by_one(rows: RowBuilder, records: list[dict[str, Any]]) -> list[Any]:
    out: list[Any] = []
    for record in records:
        try:
            out.append(rows.build(record, CD_TIME))
        except RowError as exc:
            out.append((exc.field, exc.reason))
    return out


def built_together(rows: RowBuilder, records: list[dict[str, Any]]) -> list[Any]:
    return [(r.field, r.reason) if isinstance(r, RowError) else r for r in rows.build_all(records, CD_TIME)]


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("max_layouts", [64, 0])
def test_a_batch_built_column_by_column_is_the_batch_built_record_by_record(dialect: str, max_layouts: int) -> None:
    # build_all (the adapter's path) transposes records of one layout and encodes a column at a
    # time; a group with one bad record falls back to build. Same rows, same refusals, same order.
    compared = 0
    for record in valid_records():
        kind = record["record_kind"]
        columns = {c.name: c for c in kind_columns()[kind]}
        every = list(variants(record, columns))
        for size in (7, len(every)):
            together, one_by_one = builder(kind, dialect, max_layouts=max_layouts), builder(kind, dialect,
                                                                                            max_layouts=max_layouts)
            for start in range(0, len(every), size):
                chunk = every[start:start + size]
                assert built_together(together, chunk) == built_one_by_one(one_by_one, chunk), (kind, start)
                compared += len(chunk)
        good = [record | {"record_id": f"00000000-0000-4000-8000-{i:012d}"} for i in range(20)]
        for bad in every[1:40]:
            chunk = [*good[:10], bad, *good[10:]]
            assert built_together(builder(kind, dialect), chunk) == built_one_by_one(builder(kind, dialect), chunk)
            compared += len(chunk)
    assert compared > 10_000


def test_a_record_of_a_learnt_layout_is_built_as_its_own() -> None:
    penalty = next(r for r in valid_records() if r["record_kind"] == "penalty")
    rows = builder("penalty", "postgresql")
    columns, _ = rows.build(penalty, CD_TIME)
    other = penalty | {"record_id": "00000000-0000-4000-8000-0000000000e1", "decision_doc_no": "杭西罚〔2025〕9号",
                       "hearing_held": True, "submitted_at": "2025-06-21T09:00:00+08:00"}
    assert rows.build(other, CD_TIME)[0] is columns  # the learnt layout
    written = dict(zip(*rows.build(other, CD_TIME), strict=True))
    assert written["cd_id"] == other["record_id"] and written["decision_doc_no"] == "杭西罚〔2025〕9号"
    assert written["hearing_held"] is True and written["submitted_at"] == "2025-06-21T09:00:00+08:00"
    assert written["cd_source"] == "330000|11330106002500121C" and written["cd_time"] == CD_TIME
    assert "penalty_types" in columns and "fine_paid_yuan" not in columns  # only the record's own


def test_layouts_beyond_the_limit_are_built_field_by_field() -> None:
    penalty = next(r for r in valid_records() if r["record_kind"] == "penalty")
    rows = builder("penalty", "sqlite", max_layouts=1)
    learnt, _ = rows.build(penalty, CD_TIME)
    shorter = {k: v for k, v in penalty.items() if k != "penalty_types"}
    columns, row = rows.build(shorter, CD_TIME)
    assert columns is rows.all_columns and columns is not learnt
    assert row[columns.index("penalty_types")] is None
    assert outcome(rows, shorter) == outcome(builder("penalty", "sqlite", max_layouts=0), shorter)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_dates_are_written_as_their_parsed_value_would_be(dialect: str) -> None:
    """The record's text is written as it is only when it is the parsed value's ISO form; SQLite
    stores that text (SQLAlchemy wrote ``isoformat()``), PostgreSQL parses it to the same instant."""
    column = {c.name: c for c in kind_columns()["penalty"]}
    submitted, decided = column["submitted_at"], column["decided_at"]
    rows = builder("penalty", dialect)
    record = next(r for r in valid_records() if r["record_kind"] == "penalty")
    for text in ("2025-06-20T18:05:00+08:00", "2025-06-20T18:05:00-00:00", "2025-06-20T18:05:00+00:00",
                 "2025-06-20 18:05:00+08:00", "2025-06-20T18:05:00.5+08:00", "2025-06-20T18:05Z",
                 "20250620T180500+0800", "2025-06-20T18:05:00+05:45"):
        expected = datetime.fromisoformat(text).isoformat()
        for _ in range(2):  # the second from the remembered values
            written = dict(zip(*rows.build(record | {submitted.name: text}, CD_TIME), strict=True))
            assert written[submitted.name] == expected, text
    for text in ("2025-06-18", "20250618", "2025-W25-3"):
        written = dict(zip(*rows.build(record | {decided.name: text}, CD_TIME), strict=True))
        assert written[decided.name] == date.fromisoformat(text).isoformat(), text
