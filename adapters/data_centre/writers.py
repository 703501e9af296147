"""Built rows (``rows.py``) written into their ``ex_<kind>`` table at driver level, inside the
adapter's transaction: neither SQLAlchemy's per-row parameter processing nor a round trip per row.

A write is rows that fill the same columns (``cd_batch`` last, set here). PostgreSQL takes one
``COPY ... FROM STDIN``, SQLite one ``executemany``. A row whose ``cd_id`` is in the table already
(a retried batch, a concurrent writer) raises ``RowsAlreadyWritten`` and the transaction must be
rolled back: COPY knows no ON CONFLICT, and on SQLite the count of rows inserted shows it. A row
the table refuses raises SQLAlchemy's ``IntegrityError`` or ``DataError`` like every database
refusal, anything else a ``DBAPIError``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import psycopg
from sqlalchemy import Connection, Dialect, String, Table, any_, bindparam, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import DBAPIError

_IN_CHUNK = 500


class RowsAlreadyWritten(Exception):
    """Some of the rows are in their table already: look them up and write the others."""


class TableWriter(Protocol):
    def write(self, conn: Connection, columns: tuple[str, ...], rows: Sequence[list[Any]], cd_batch: str) -> None:
        """Insert ``rows`` of ``columns`` (each given ``cd_batch``) in ``conn``'s transaction."""

    def existing(self, conn: Connection, ids: Sequence[str]) -> dict[str, str]:
        """cd_id -> cd_batch of the ids already in the table."""


def table_writer(table: Table, dialect: Dialect) -> TableWriter:
    return CopyWriter(table, dialect) if dialect.name == "postgresql" else SqliteWriter(table, dialect)


class _Statements:
    """The statement per set of columns, made once (a table sees few: one per record layout) by
    ``make(table, quoted column names, columns)``."""

    def __init__(self, table: Table, dialect: Dialect, make: Callable[[str, str, Sequence[str]], str]) -> None:
        self._table = table
        self._preparer = dialect.identifier_preparer
        self._make = make
        self._made: dict[tuple[str, ...], str] = {}

    def get(self, columns: tuple[str, ...]) -> str:
        sql = self._made.get(columns)
        if sql is None:
            unknown = set(columns) - set(self._table.c.keys())
            if unknown:
                raise ValueError(f"no such columns in {self._table.name}: {sorted(unknown)}")
            quoted = ", ".join(self._preparer.quote(c) for c in columns)
            sql = self._made[columns] = self._make(self._preparer.format_table(self._table), quoted, columns)
        return sql


def _copy(table: str, quoted: str, columns: Sequence[str]) -> str:
    return f"COPY {table} ({quoted}) FROM STDIN"


def _insert(table: str, quoted: str, columns: Sequence[str]) -> str:
    values = ", ".join("?" * len(columns))
    return f"INSERT INTO {table} ({quoted}) VALUES ({values}) ON CONFLICT (cd_id) DO NOTHING"  # noqa: S608 (names: the table's, quoted)


class CopyWriter:
    """PostgreSQL: the rows hold texts, bools, ints and None, which psycopg's C ``write_row`` writes
    and escapes without a Python dumper per value."""

    def __init__(self, table: Table, dialect: Dialect) -> None:
        self._copies = _Statements(table, dialect, _copy)
        self._lookup = select(table.c.cd_id, table.c.cd_batch).where(
            table.c.cd_id == any_(bindparam("ids", type_=postgresql.ARRAY(String))))

    def write(self, conn: Connection, columns: tuple[str, ...], rows: Sequence[list[Any]], cd_batch: str) -> None:
        if not rows:
            return
        sql = self._copies.get(columns)
        driver: Any = conn.connection.driver_connection
        try:
            with driver.cursor() as cursor, cursor.copy(sql) as copy:
                for row in rows:
                    row[-1] = cd_batch
                    copy.write_row(row)
        except psycopg.errors.UniqueViolation as exc:
            raise RowsAlreadyWritten(str(exc).splitlines()[0]) from exc
        except psycopg.Error as exc:
            raise DBAPIError.instance(sql, None, exc, psycopg.Error) from exc

    def existing(self, conn: Connection, ids: Sequence[str]) -> dict[str, str]:
        """As one statement whatever the number of ids."""
        return {cd_id: cd_batch for cd_id, cd_batch in conn.execute(self._lookup, {"ids": list(ids)})}


class SqliteWriter:
    """SQLite (the embedded run): one ``executemany`` that skips rows already there, and counts.

    The table's CHECK of cd_operation is not evaluated for these rows (``ignore_check_constraints``
    while they are inserted): the row builder admits only i, u and d, and SQLite evaluates an
    ``IN (...)`` CHECK by building a temporary index for every row, a third of the insert's cost.
    NOT NULL, the primary key and the other tables' CHECKs still apply."""

    def __init__(self, table: Table, dialect: Dialect) -> None:
        self._inserts = _Statements(table, dialect, _insert)
        self._table = table

    def write(self, conn: Connection, columns: tuple[str, ...], rows: Sequence[list[Any]], cd_batch: str) -> None:
        if not rows:
            return
        sql = self._inserts.get(columns)
        for row in rows:
            row[-1] = cd_batch
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute("PRAGMA ignore_check_constraints = ON")
            try:
                cursor.executemany(sql, rows)
                inserted = cursor.rowcount
            finally:
                cursor.execute("PRAGMA ignore_check_constraints = OFF")
        except sqlite3.Error as exc:
            raise DBAPIError.instance(sql, None, exc, sqlite3.Error) from exc
        finally:
            cursor.close()
        if inserted != len(rows):
            raise RowsAlreadyWritten(f"{len(rows) - inserted} of {len(rows)} rows are in {self._table.name}")

    def existing(self, conn: Connection, ids: Sequence[str]) -> dict[str, str]:
        table = self._table
        found: dict[str, str] = {}
        for start in range(0, len(ids), _IN_CHUNK):
            stmt = select(table.c.cd_id, table.c.cd_batch).where(table.c.cd_id.in_(ids[start:start + _IN_CHUNK]))
            found.update({cd_id: cd_batch for cd_id, cd_batch in conn.execute(stmt)})
        return found
