"""A standard record as a row of its ``ex_<kind>`` table (append-only: one row per version)."""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping, Sequence
from datetime import datetime
from operator import itemgetter
from typing import Any

import orjson
import psycopg
from sqlalchemy import JSON, Connection, Dialect, String, Table, any_, bindparam, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import DBAPIError

from adapters.data_centre.columns import Converter, FieldColumn, converter

CD_SOURCE = re.compile(r"[0-9]{6}\|[0-9A-Z]{18}")
OPERATIONS = frozenset({"i", "u", "d"})
TEXT_TYPES = frozenset({"string", "text", "enum"})


class RowError(ValueError):
    """The record cannot be written: ``field`` is the standard field (or exchange column) at fault."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class RowBuilder:
    """Builds rows for one table; converters are compiled once."""

    def __init__(self, columns: tuple[FieldColumn, ...], *, province_code: str | None,
                 department_code: str | None) -> None:
        self._converters: dict[str, Converter] = {c.name: converter(c) for c in columns}
        # Text columns are checked inline (most fields are text); a value that fails the check goes
        # through the column's converter for its error.
        self._text_limits = {c.name: c.length or sys.maxsize for c in columns if c.type in TEXT_TYPES}
        # Every column present (None unless the record has a value): the row's shape never varies.
        self._empty = dict.fromkeys(c.name for c in columns)
        self._province_code = province_code
        self._department_code = department_code

    def build(self, record: Mapping[str, Any], cd_time: datetime, cd_batch: str) -> dict[str, Any]:
        row = {
            "cd_id": _required(record, "record_id"),
            "cd_time": cd_time,
            "cd_source": self.cd_source(record),
            "cd_batch": cd_batch,
            "cd_operation": _operation(record),
            "record_unique_identity": _required(record, "source_record_id"),
        }
        row.update(self._empty)
        converters = self._converters
        text_limits = self._text_limits
        # Only the record's own fields are visited: absent ones stay None without a converter call.
        for name, value in record.items():
            if value is None or value == "" or value == []:
                continue
            limit = text_limits.get(name)
            if limit is not None and value.__class__ is str and len(value) <= limit:
                row[name] = value
                continue
            convert = converters.get(name)
            if convert is None:
                continue
            try:
                row[name] = convert(value)
            except (ValueError, TypeError) as exc:
                raise RowError(name, str(exc)) from exc
        return row

    def cd_source(self, record: Mapping[str, Any]) -> str:
        """``<province>|<department>``: province = admin_division_code[0:2] + "0000" and department =
        provider_uscc, unless the target configures other codes."""
        province = self._province_code or str(record.get("admin_division_code") or "")[:2] + "0000"
        department = self._department_code or str(record.get("provider_uscc") or "")
        source = f"{province}|{department}"
        if not CD_SOURCE.fullmatch(source):
            raise RowError("provider_uscc", "cd_source must be <6 digits>|<18-character USCC>")
        return source


def _required(record: Mapping[str, Any], field: str) -> str:
    value = record.get(field)
    if not isinstance(value, str) or not value or len(value) > 100:
        raise RowError(field, "required, at most 100 characters")
    return value


def _operation(record: Mapping[str, Any]) -> str:
    operation = record.get("operation")
    if operation not in OPERATIONS:
        raise RowError("operation", "must be i, u or d")
    return str(operation)


class BulkInsert:
    """PostgreSQL: rows of one table written with ``COPY ... FROM STDIN`` on the transaction's own
    DBAPI connection: neither SQLAlchemy's per-row parameter processing nor a round trip per row is
    paid. COPY knows no ON CONFLICT: a row already in the table (written before, or by a concurrent
    writer) fails the whole COPY with a unique violation, raised as SQLAlchemy's ``IntegrityError``
    like every database refusal, and the adapter then looks the ids up and, if still refused,
    falls back to row-by-row inserts that ignore conflicts."""

    def __init__(self, table: Table, dialect: Dialect) -> None:
        quote = dialect.identifier_preparer.quote
        self._names = tuple(c.name for c in table.columns)
        self._values = itemgetter(*self._names)
        self._json = tuple(i for i, c in enumerate(table.columns) if isinstance(c.type, JSON))
        name = dialect.identifier_preparer.format_table(table)
        self.sql = f"COPY {name} ({', '.join(quote(n) for n in self._names)}) FROM STDIN"
        self._lookup = select(table.c.cd_id, table.c.cd_batch).where(
            table.c.cd_id == any_(bindparam("ids", type_=postgresql.ARRAY(String))))

    def existing(self, conn: Connection, ids: Sequence[str]) -> dict[str, str]:
        """cd_id -> cd_batch of the ids already in the table, as one statement whatever their number."""
        return {cd_id: cd_batch for cd_id, cd_batch in conn.execute(self._lookup, {"ids": list(ids)})}

    def execute(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        if not rows:
            return
        values = self._values
        json_positions = self._json
        driver: Any = conn.connection.driver_connection
        try:
            with driver.cursor() as cursor, cursor.copy(self.sql) as copy:
                for row in rows:
                    row_values = values(row)
                    if json_positions:
                        row_values = list(row_values)
                        for i in json_positions:
                            if row_values[i] is not None:
                                row_values[i] = _json_text(row_values[i])
                    copy.write_row(row_values)
        except psycopg.Error as exc:
            raise DBAPIError.instance(self.sql, None, exc, psycopg.Error) from exc


def _json_text(value: Any) -> str:
    return orjson.dumps(value).decode()
