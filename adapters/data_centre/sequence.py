"""The cd_batch sequence: per (target, day), persisted, never reused.

Production passes the gateway's own (``gateway.stores.SqlBatchSequence``: the 前置库 login may
only INSERT and SELECT the exchange tables); the embedded run may keep it in the target database.
"""

from __future__ import annotations

from datetime import date
from typing import Protocol

from sqlalchemy import Connection, Engine, Table, bindparam, text

MAX_DAILY_SEQUENCE = 99_999


class BatchSequence(Protocol):
    def next_value(self, target: str, day: date) -> int: ...


def format_batch(day: date, sequence: int) -> str:
    """``yyyyMMdd`` + 5-digit sequence: the 2nd submission on 2019-04-11 is ``2019041100002``."""
    if not 1 <= sequence <= MAX_DAILY_SEQUENCE:
        raise ValueError(f"cd_batch sequence {sequence} out of range for {day}")
    return f"{day:%Y%m%d}{sequence:05d}"


class TableBatchSequence:
    """A sequence kept in a table of the target database. The adapter takes its numbers with
    ``next_value_in`` inside the transaction that writes the batch, so that a number and its rows
    commit together (the row stays locked until then: the batches of one day commit in order);
    ``next_value`` takes one in a committed transaction of its own."""

    def __init__(self, engine: Engine, table: Table) -> None:
        self._engine = engine
        # As text, which SQLAlchemy compiles once: it compiles an ON CONFLICT construct anew at every
        # execution (it has no cache key). The same statement on PostgreSQL and SQLite.
        name = engine.dialect.identifier_preparer.format_table(table)
        self._bump = text(
            f"INSERT INTO {name} (target, day, last_seq) VALUES (:target, :day, 1) "  # noqa: S608 (the table's name)
            f"ON CONFLICT (target, day) DO UPDATE SET last_seq = {name}.last_seq + 1 RETURNING last_seq"
        ).bindparams(bindparam("target", type_=table.c.target.type), bindparam("day", type_=table.c.day.type))

    def next_value(self, target: str, day: date) -> int:
        with self._engine.begin() as conn:
            return self.next_value_in(conn, target, day)

    def next_value_in(self, conn: Connection, target: str, day: date) -> int:
        return int(conn.execute(self._bump, {"target": target, "day": day}).scalar_one())
