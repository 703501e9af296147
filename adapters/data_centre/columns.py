"""The columns of the 前置库 ``ex_<kind>`` tables, derived from the standard as ``tools/gen_ddl.py`` does.

Exchange columns first (cd_id ... record_unique_identity), then the standard's common fields except
those the exchange columns or the table name stand for, then the kind's fields in standard order.
``NOT NULL`` only on required common fields and the business key, so ``d`` rows fit. Each column
has a converter from the record's JSON value to the value bound for the database; it raises
``ValueError`` for a value the column cannot hold (the same on SQLite, which checks no lengths).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

from mapping.standard import FieldSpec, Standard, load_standard

EXCHANGE_COLUMNS = ("cd_id", "cd_time", "cd_source", "cd_batch", "cd_operation", "record_unique_identity")
SKIPPED_COMMON = frozenset({"record_kind", "record_id", "operation", "source_record_id", "ext"})
MIN_ENUM_WIDTH = 16

Converter = Callable[[Any], Any]


@dataclass(frozen=True, slots=True)
class FieldColumn:
    """A standard field as a column: ``sql`` is its PostgreSQL type as written in ddl.sql."""

    name: str
    type: str
    sql: str
    not_null: bool
    length: int | None = None


@lru_cache(maxsize=4)
def kind_columns(version: str = "1.0") -> dict[str, tuple[FieldColumn, ...]]:
    """Per record kind, the standard columns of its ``ex_<kind>`` table (exchange columns excluded)."""
    standard = load_standard(version)
    out = {}
    for name, kind in standard.kinds.items():
        key = set(kind.business_key)
        common = [f for f in kind.fields.values() if f.name in kind.common_fields]
        own = [f for f in kind.fields.values() if f.name not in kind.common_fields]
        columns = [_column(f, standard, f.name in key or f.required is True)
                   for f in common if f.name not in SKIPPED_COMMON]
        columns += [_column(f, standard, f.name in key) for f in own]
        out[name] = tuple(columns)
    return out


def business_keys(version: str = "1.0") -> dict[str, tuple[str, ...]]:
    return {name: kind.business_key for name, kind in load_standard(version).kinds.items()}


def _column(field: FieldSpec, standard: Standard, not_null: bool) -> FieldColumn:
    kind = field.type
    name = field.name
    if kind == "string" and field.max_length is not None:
        return FieldColumn(name, kind, f"varchar({field.max_length})", not_null, field.max_length)
    if kind == "enum" and field.code_table is not None:
        width = max(MIN_ENUM_WIDTH, *(len(code) for code in standard.code_tables[field.code_table].codes))
        return FieldColumn(name, kind, f"varchar({width})", not_null, width)
    if kind == "decimal":
        return FieldColumn(name, kind, "numeric(18,2)" if field.unit == "yuan" else "numeric(20,6)", not_null)
    return FieldColumn(name, kind, _SIMPLE_SQL[kind], not_null)


_SIMPLE_SQL = {
    "string": "text", "text": "text", "date": "date", "datetime": "timestamptz", "integer": "integer",
    "boolean": "boolean", "list[string]": "jsonb", "list[object]": "jsonb", "object": "jsonb",
}


def converter(column: FieldColumn) -> Converter:
    """The function from a record value (JSON) to the value bound for the column."""
    if column.type in ("string", "text", "enum"):
        return _string(column.length)
    return _CONVERTERS[column.type]


def _string(length: int | None) -> Converter:
    def convert(value: Any) -> str:
        if not isinstance(value, str):
            raise ValueError("expected a string")
        if length is not None and len(value) > length:
            raise ValueError(f"longer than {length} characters")
        return value

    return convert


def _datetime(value: Any) -> datetime:
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError("a datetime needs its offset")
    return parsed


def _decimal(value: Any) -> Decimal:
    if not isinstance(value, str):
        raise ValueError("expected a decimal string")
    try:
        return Decimal(value)
    except InvalidOperation as exc:
        raise ValueError("not a decimal") from exc


def _integer(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("expected an integer")
    return int(value)


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("expected a boolean")
    return value


def _json(value: Any) -> Any:
    if not isinstance(value, list | dict):
        raise ValueError("expected a JSON array or object")
    return value


_CONVERTERS: dict[str, Converter] = {
    "date": date.fromisoformat, "datetime": _datetime, "decimal": _decimal, "integer": _integer,
    "boolean": _boolean, "list[string]": _json, "list[object]": _json, "object": _json,
}
