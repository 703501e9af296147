"""The cd_batch sequence: per (target, day), persisted, never reused.

Production passes the gateway's own (``gateway.stores.SqlBatchSequence``: the 前置库 login may
only INSERT and SELECT the exchange tables); the embedded run may keep it in the target database.
"""

from __future__ import annotations

from datetime import date
from typing import Protocol

from sqlalchemy import Engine, Table
from sqlalchemy.dialects import postgresql, sqlite

MAX_DAILY_SEQUENCE = 99_999


class BatchSequence(Protocol):
    def next_value(self, target: str, day: date) -> int: ...


def format_batch(day: date, sequence: int) -> str:
    """``yyyyMMdd`` + 5-digit sequence: the 2nd submission on 2019-04-11 is ``2019041100002``."""
    if not 1 <= sequence <= MAX_DAILY_SEQUENCE:
        raise ValueError(f"cd_batch sequence {sequence} out of range for {day}")
    return f"{day:%Y%m%d}{sequence:05d}"


class TableBatchSequence:
    """A sequence kept in a table of the target database, taken in its own committed transaction."""

    def __init__(self, engine: Engine, table: Table) -> None:
        self._engine = engine
        self._table = table

    def next_value(self, target: str, day: date) -> int:
        t = self._table
        insert = postgresql.insert(t) if self._engine.dialect.name == "postgresql" else sqlite.insert(t)
        stmt = (insert.values(target=target, day=day, last_seq=1)
                .on_conflict_do_update(index_elements=[t.c.target, t.c.day],
                                       set_={"last_seq": t.c.last_seq + 1})
                .returning(t.c.last_seq))
        with self._engine.begin() as conn:
            return int(conn.execute(stmt).scalar_one())
