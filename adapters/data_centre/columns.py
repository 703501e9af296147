"""The columns of the 前置库 ``ex_<kind>`` tables, derived from the standard as ``tools/gen_ddl.py`` does.

Exchange columns first (cd_id ... record_unique_identity), then the standard's common fields except
those the exchange columns or the table name stand for, then the kind's fields in standard order.
``NOT NULL`` only on required common fields and the business key, so ``d`` rows fit. Each column
has an encoder per dialect from the record's JSON value to the value written: what psycopg's COPY
writes as it is on PostgreSQL, or SQLite's value as the tables' SQLite types store it (``tables.py``,
which reads it back). It raises
``ValueError`` or ``TypeError`` for a value the column cannot hold (the same on SQLite, which checks
no lengths), so both dialects accept and refuse the same records.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache, partial
from typing import Any

import orjson

from mapping.standard import FieldSpec, Standard, load_standard

EXCHANGE_COLUMNS = ("cd_id", "cd_time", "cd_source", "cd_batch", "cd_operation", "record_unique_identity")
SKIPPED_COMMON = frozenset({"record_kind", "record_id", "operation", "source_record_id", "ext"})
MIN_ENUM_WIDTH = 16
TEXT_TYPES = frozenset({"string", "text", "enum"})
# Types whose encoder is a function of a text alone (no 1 == True among the values it takes), so
# that its results may be remembered.
MEMOISABLE_TYPES = frozenset({"date", "datetime", "decimal"})
MEMO_SIZE = 1_024

Converter = Callable[[Any], Any]
ColumnEncoder = Callable[[tuple[Any, ...]], Iterable[Any]]


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


def encoder(column: FieldColumn, dialect: str) -> Converter:
    """The function from a record value (JSON) to the value written for the column on ``dialect``
    (``postgresql``: what psycopg's COPY writes as it is, texts, bools and ints; ``sqlite``: the
    stored value)."""
    if column.type in TEXT_TYPES:
        return _string(column.length)
    return _ENCODERS[dialect][column.type]


def quick_encoder(column: FieldColumn, dialect: str) -> tuple[type, Converter | None]:
    """For rows built from a known layout (``rows.py``): the type the record's value of a column
    that is no text has when it is well-formed, and the encoder of such a value (None: the value
    is written as it is), which may skip the checks of its type. A value of another type, or absent
    (None, "", []) is built field by field instead; dates, datetimes and decimals are remembered."""
    value_type = _VALUE_TYPES[column.type]
    if column.type in MEMOISABLE_TYPES:
        return value_type, _memoised_encoders(dialect)[column.type]
    if column.type in _JSON_TYPES:
        return value_type, _present_json
    if column.type in _AS_IT_IS[dialect]:
        return value_type, None
    if column.type == "boolean":  # SQLite: 0/1, and the value is a bool
        return value_type, int
    return value_type, _ENCODERS[dialect][column.type]


def column_encoder(encode: Converter) -> ColumnEncoder:
    """For rows built a column at a time (``rows.py``): ``map(encode, values)`` of a column's values
    of the type ``quick_encoder`` gives, or what it would give at less cost."""
    return _COLUMN_ENCODERS.get(encode) or partial(map, encode)


def _decimal_column(encode: Converter) -> ColumnEncoder:
    # Amounts as the standard writes them are their own decimal text: no parsing, no memo look-up.
    def encode_column(values: tuple[Any, ...]) -> Iterable[Any]:
        return values if all(map(_CANONICAL_DECIMAL.fullmatch, values)) else map(encode, values)

    return encode_column


def _present_json_column(values: tuple[Any, ...]) -> Iterable[str]:
    if [] in values:
        raise ValueError("absent")
    return map(bytes.decode, map(orjson.dumps, values))


@lru_cache(maxsize=2)
def _memoised_encoders(dialect: str) -> dict[str, Converter]:
    # Parsing and checking a datetime costs more than looking it up, and batches repeat them (the
    # received_at of an envelope, decision dates, amounts).
    return {kind: lru_cache(maxsize=MEMO_SIZE)(_ENCODERS[dialect][kind]) for kind in MEMOISABLE_TYPES}


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


def _json(value: Any) -> str:
    # A tuple: `list | dict` would be built at every call.
    if not isinstance(value, (list, dict)):
        raise ValueError("expected a JSON array or object")
    return orjson.dumps(value).decode()


def _present_json(value: list[Any] | dict[str, Any]) -> str:
    if value == []:
        raise ValueError("absent")
    return orjson.dumps(value).decode()


# A date or datetime already written as its parsed value would be (the standard's own form) is
# written as it is: formatting a datetime costs more than the rest of its row. PostgreSQL parses
# the ISO texts whatever its DateStyle.
_CANONICAL_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# isoformat() of an aware datetime without microseconds, which writes the offset -00:00 as +00:00.
_CANONICAL_DATETIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\+[0-9]{2}:[0-9]{2}|-(?!00:00)[0-9]{2}:[0-9]{2})")


def _date(value: Any) -> str:
    parsed = date.fromisoformat(value)
    return value if _CANONICAL_DATE.fullmatch(value) else parsed.isoformat()


def _iso_datetime(value: Any) -> str:
    parsed = _datetime(value)
    return value if _CANONICAL_DATETIME.fullmatch(value) else parsed.isoformat()


def _sqlite_decimal(value: Any) -> str:
    return str(_decimal(value))


def _pg_decimal(value: Any) -> str:
    # As psycopg's dumper wrote it: numeric has one NaN, so sNaN is written NaN.
    parsed = _decimal(value)
    return "NaN" if parsed.is_nan() else str(parsed)


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("expected a boolean")
    return value


def _sqlite_boolean(value: Any) -> int:
    return int(_boolean(value))  # SQLAlchemy's Boolean on SQLite: 0/1


# A decimal's text as str(Decimal(text)) gives it back: ASCII digits, no exponent, no sign but -, no
# leading zero, and no form str() writes with an exponent (0.0000001 is 1E-7, 0.0000000 is 0E-7).
_CANONICAL_DECIMAL = re.compile(r"-?(?:[1-9][0-9]*(?:\.[0-9]+)?|0(?:\.[0-9]{1,6})?)")

_JSON_TYPES = ("list[string]", "list[object]", "object")
_ENCODERS: dict[str, dict[str, Converter]] = {
    # Bools and ints as they are: psycopg's C dumpers write them.
    "postgresql": {"date": _date, "datetime": _iso_datetime, "decimal": _pg_decimal, "integer": _integer,
                   "boolean": _boolean, **dict.fromkeys(_JSON_TYPES, _json)},
    "sqlite": {"date": _date, "datetime": _iso_datetime, "decimal": _sqlite_decimal,
               "integer": _integer, "boolean": _sqlite_boolean, **dict.fromkeys(_JSON_TYPES, _json)},
}

_VALUE_TYPES: dict[str, type] = {"date": str, "datetime": str, "decimal": str, "integer": int, "boolean": bool,
                                 "list[string]": list, "list[object]": list, "object": dict}
# Values of the right type (checked exactly: no bool for integer) the driver writes as they are:
# psycopg's C dumpers write bools and ints as PostgreSQL reads them; sqlite3 binds an int (a bool
# is adapted at a cost, so it is encoded as 0/1).
_AS_IT_IS = {"postgresql": frozenset({"boolean", "integer"}), "sqlite": frozenset({"integer"})}
_COLUMN_ENCODERS: dict[Converter, ColumnEncoder] = {
    _present_json: _present_json_column,
    **{memo: _decimal_column(memo) for memo in (_memoised_encoders(d)["decimal"] for d in _ENCODERS)},
}
