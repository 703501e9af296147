"""The outbox: accepted records waiting for delivery, one row per (adapter, record).

States: ``pending`` (due at ``next_attempt_at``) -> ``inflight`` (claimed; ``next_attempt_at`` is
the lease's end, after which another worker may claim it again) -> ``done`` | ``pending`` (retry)
| ``dead`` (a dead letter, for ops to redrive). ``attempts`` counts claims.

The ``Outbox`` protocol is what the delivery worker needs; ``SqlOutbox`` implements it on the
stores' database (a Redis Streams one comes later and must keep the same protocol).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Connection, Engine, RowMapping, func, select, update

from gateway.stores.db import translate_errors
from gateway.stores.keys import BusinessKey, optional_hash
from gateway.stores.records import insert_ignoring_conflicts
from gateway.stores.schema import outbox

DEFAULT_LEASE_S = 300.0


@dataclass(frozen=True, slots=True)
class OutboxRow:
    adapter: str
    record_id: str
    kind: str
    payload: Mapping[str, Any]
    enqueued_at: datetime
    department: str | None = None
    business_key: BusinessKey | None = None


@dataclass(frozen=True, slots=True)
class OutboxItem:
    id: int
    adapter: str
    record_id: str
    kind: str
    business_key_hash: str | None
    department: str | None
    payload: dict[str, Any]
    enqueued_at: datetime
    attempts: int
    state: str
    last_error: str | None

    @classmethod
    def from_row(cls, row: RowMapping) -> OutboxItem:
        return cls(id=row["id"], adapter=row["adapter"], record_id=row["record_id"], kind=row["kind"],
                   business_key_hash=row["business_key_hash"], department=row["department"],
                   payload=row["payload"], enqueued_at=row["enqueued_at"], attempts=row["attempts"],
                   state=row["state"], last_error=row["last_error"])


class Outbox(Protocol):
    def put_many(self, rows: Sequence[OutboxRow]) -> None: ...

    def claim(self, adapter: str, limit: int, now: datetime) -> list[OutboxItem]: ...

    def complete(self, ids: Sequence[int]) -> None: ...

    def retry(self, ids: Sequence[int], next_attempt_at: datetime, error: str) -> None: ...

    def dead(self, ids: Sequence[int], error: str) -> None: ...

    def depth(self, adapter: str) -> int: ...


def insert_outbox(conn: Connection, rows: Sequence[OutboxRow], secret: bytes | None) -> None:
    if rows:
        conn.execute(insert_ignoring_conflicts(conn, outbox, ["adapter", "record_id"]), [
            {"adapter": r.adapter, "record_id": r.record_id, "kind": r.kind, "department": r.department,
             "business_key_hash": optional_hash(r.kind, r.business_key, secret), "payload": dict(r.payload),
             "enqueued_at": r.enqueued_at, "next_attempt_at": r.enqueued_at, "attempts": 0,
             "state": "pending", "updated_at": r.enqueued_at}
            for r in rows
        ])


class SqlOutbox:
    def __init__(self, engine: Engine, *, lease_s: float = DEFAULT_LEASE_S,
                 key_secret: bytes | None = None) -> None:
        self._engine = engine
        self._lease = timedelta(seconds=lease_s)
        self._secret = key_secret

    def put_many(self, rows: Sequence[OutboxRow]) -> None:
        with translate_errors("queueing records"), self._engine.begin() as conn:
            insert_outbox(conn, rows, self._secret)

    def claim(self, adapter: str, limit: int, now: datetime) -> list[OutboxItem]:
        """Take up to ``limit`` due items, oldest first, as one statement: concurrent workers never
        get the same item (PostgreSQL skips rows locked by another claim; SQLite serialises writers)."""
        due = (select(outbox.c.id)
               .where(outbox.c.adapter == adapter, outbox.c.state.in_(("pending", "inflight")),
                      outbox.c.next_attempt_at <= now)
               .order_by(outbox.c.id).limit(limit).with_for_update(skip_locked=True))
        stmt = (update(outbox).where(outbox.c.id.in_(due.scalar_subquery()))
                .values(state="inflight", attempts=outbox.c.attempts + 1,
                        next_attempt_at=now + self._lease, updated_at=now)
                .returning(*outbox.c))
        with translate_errors("claiming queued records"), self._engine.begin() as conn:
            items = [OutboxItem.from_row(r) for r in conn.execute(stmt).mappings()]
        return sorted(items, key=lambda item: item.id)

    def complete(self, ids: Sequence[int]) -> None:
        self._set(ids, "marking records delivered", state="done", last_error=None)

    def retry(self, ids: Sequence[int], next_attempt_at: datetime, error: str) -> None:
        self._set(ids, "rescheduling records", state="pending", next_attempt_at=next_attempt_at,
                  last_error=error)

    def dead(self, ids: Sequence[int], error: str) -> None:
        self._set(ids, "dead-lettering records", state="dead", last_error=error)

    def redrive(self, ids: Sequence[int], now: datetime) -> None:
        """Put dead letters back in the queue, due now, with a fresh attempt count."""
        self._set(ids, "redriving dead letters", state="pending", next_attempt_at=now, attempts=0,
                  where_state="dead")

    def depth(self, adapter: str) -> int:
        """Items not yet delivered nor dead: pending and in flight."""
        stmt = select(func.count()).select_from(outbox).where(
            outbox.c.adapter == adapter, outbox.c.state.in_(("pending", "inflight")))
        with translate_errors("measuring the outbox"), self._engine.connect() as conn:
            return int(conn.execute(stmt).scalar_one())

    def get(self, item_id: int) -> OutboxItem | None:
        with translate_errors("reading the outbox"), self._engine.connect() as conn:
            row = conn.execute(select(outbox).where(outbox.c.id == item_id)).mappings().first()
        return None if row is None else OutboxItem.from_row(row)

    def _set(self, ids: Sequence[int], action: str, *, where_state: str | None = None, **values: Any) -> None:
        if not ids:
            return
        stmt = update(outbox).where(outbox.c.id.in_(list(ids))).values(updated_at=func.now(), **values)
        if where_state is not None:
            stmt = stmt.where(outbox.c.state == where_state)
        with translate_errors(action), self._engine.begin() as conn:
            conn.execute(stmt)
