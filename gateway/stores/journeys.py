"""The journey of every record (全过程留痕): received, mapped, queued, each attempt, each receipt.

Append-only. ``detail`` must hold no personal information in clear (it is shown to operators).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import Connection, Engine, RowMapping, select

from gateway.stores.bulk import BulkValues, insert_rows
from gateway.stores.db import translate_errors
from gateway.stores.schema import journeys

JourneyEvent = Literal[
    "received", "mapped", "rejected", "accepted", "duplicate", "queued",
    "attempted", "delivered", "retried", "failed", "remote_rejected", "dead", "redriven",
]


@dataclass(frozen=True, slots=True)
class JourneyRow:
    """One step of a record's journey. ``record_id`` may be None for envelope-level events."""

    record_id: str | None
    event: str
    at: datetime = field(default_factory=lambda: datetime.now(UTC))
    envelope_id: str | None = None
    target: str | None = None
    detail: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class JourneyEntry:
    id: int
    record_id: str | None
    envelope_id: str | None
    event: str
    target: str | None
    detail: dict[str, Any] | None
    at: datetime

    @classmethod
    def from_row(cls, row: RowMapping) -> JourneyEntry:
        return cls(id=row["id"], record_id=row["record_id"], envelope_id=row["envelope_id"],
                   event=row["event"], target=row["target"], detail=row["detail"], at=row["at"])


JOURNEY_COLUMNS = ("record_id", "envelope_id", "event", "target", "detail", "at")


def insert_journeys(conn: Connection, rows: Sequence[JourneyRow], values: BulkValues | None = None) -> None:
    if rows:
        v = values or BulkValues.of(conn, None)
        insert_rows(conn, journeys, JOURNEY_COLUMNS, [
            (r.record_id, r.envelope_id, r.event, r.target, v.json(r.detail), v.ts(r.at)) for r in rows])


class JourneyLog:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def append(self, record_id: str | None, event: str, *, envelope_id: str | None = None,
               target: str | None = None, detail: Mapping[str, Any] | None = None,
               at: datetime | None = None) -> None:
        row = JourneyRow(record_id=record_id, event=event, at=at or datetime.now(UTC),
                         envelope_id=envelope_id, target=target, detail=detail)
        self.append_many([row])

    def append_many(self, rows: Sequence[JourneyRow]) -> None:
        with translate_errors("recording journeys"), self._engine.begin() as conn:
            insert_journeys(conn, rows)

    def for_record(self, record_id: str) -> list[JourneyEntry]:
        """The record's steps in the order they happened."""
        return self._query(journeys.c.record_id == record_id)

    def for_envelope(self, envelope_id: str) -> list[JourneyEntry]:
        return self._query(journeys.c.envelope_id == envelope_id)

    def _query(self, condition: Any) -> list[JourneyEntry]:
        stmt = select(journeys).where(condition).order_by(journeys.c.at, journeys.c.id)
        with translate_errors("reading journeys"), self._engine.connect() as conn:
            return [JourneyEntry.from_row(r) for r in conn.execute(stmt).mappings()]
