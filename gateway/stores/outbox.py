"""The outbox: accepted records waiting for delivery, one item per (adapter, record).

States: ``pending`` (due at ``next_attempt_at``) -> ``inflight`` (claimed; ``next_attempt_at`` is
the lease's end, after which another worker may claim it again) -> ``done`` | ``pending`` (retry)
| ``dead`` (a dead letter, for ops to redrive or discard). ``attempts`` counts claims.

Per-key order: an item is claimed only when no earlier item of the same adapter and business key
is still pending or in flight, so versions of one record never overtake each other at a target
and never travel together.

The ``Outbox`` protocol is what delivery and ops need; ``SqlOutbox`` implements it on the stores'
database and ``gateway.stores.redis_outbox.RedisOutbox`` on Redis Streams. Both pass
``tests/unit/test_outbox_contract.py``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Connection, Engine, Index, RowMapping, and_, exists, func, literal_column, select, update
from sqlalchemy.sql.elements import ColumnElement

from gateway.stores.bulk import BulkValues, insert_rows
from gateway.stores.db import translate_errors
from gateway.stores.keys import BusinessKey
from gateway.stores.schema import UtcDateTime, outbox

DEFAULT_LEASE_S = 300.0
DISCARDED_PREFIX = "discarded: "
ItemId = int | str

# The per-key ordering check needs it; belongs in schema.py (asked of the lead).
Index("ix_outbox_key_order", outbox.c.adapter, outbox.c.business_key_hash, outbox.c.id)
# Claims walk the pending items of an adapter in id order and stop at the batch size.
Index("ix_outbox_claim", outbox.c.adapter, outbox.c.state, outbox.c.id)


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
    id: ItemId
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


@dataclass(frozen=True, slots=True)
class DeadLetterFilter:
    """Which dead letters an ops command acts on; every given field must match."""

    adapter: str | None = None
    kind: str | None = None
    department: str | None = None
    record_id: str | None = None
    error_contains: str | None = None

    def matches(self, item: OutboxItem) -> bool:
        return ((self.adapter is None or item.adapter == self.adapter)
                and (self.kind is None or item.kind == self.kind)
                and (self.department is None or item.department == self.department)
                and (self.record_id is None or item.record_id == self.record_id)
                and (self.error_contains is None or self.error_contains in (item.last_error or "")))


class Outbox(Protocol):
    def put_many(self, rows: Sequence[OutboxRow]) -> None: ...

    def claim(self, adapter: str, limit: int, now: datetime) -> list[OutboxItem]: ...

    def complete(self, ids: Sequence[ItemId]) -> None: ...

    def retry(self, ids: Sequence[ItemId], next_attempt_at: datetime, error: str) -> None: ...

    def dead(self, ids: Sequence[ItemId], error: str) -> None: ...

    def redrive(self, ids: Sequence[ItemId], now: datetime) -> list[ItemId]: ...

    def discard(self, ids: Sequence[ItemId], reason: str) -> int: ...

    def dead_letters(self, where: DeadLetterFilter, limit: int = 100) -> list[OutboxItem]: ...

    def get(self, item_id: ItemId) -> OutboxItem | None: ...

    def depth(self, adapter: str) -> int: ...


OUTBOX_COLUMNS = ("adapter", "record_id", "kind", "department", "business_key_hash", "payload", "enqueued_at",
                  "next_attempt_at", "attempts", "state", "updated_at")


def insert_outbox(conn: Connection, rows: Sequence[OutboxRow], secret: bytes | None,
                  values: BulkValues | None = None) -> None:
    if not rows:
        return
    v = values or BulkValues.of(conn, secret)
    out = []
    for r in rows:
        at = v.ts(r.enqueued_at)
        out.append((r.adapter, r.record_id, r.kind, r.department,
                    None if r.business_key is None else v.key_hash(r.kind, r.business_key), v.json(r.payload),
                    at, at, 0, "pending", at))
    insert_rows(conn, outbox, OUTBOX_COLUMNS, out, on_conflict=("adapter", "record_id"))


def _no_earlier_open_version() -> ColumnElement[bool]:
    earlier = outbox.alias("earlier")
    return ~exists().where(and_(earlier.c.adapter == outbox.c.adapter,
                                earlier.c.business_key_hash == outbox.c.business_key_hash,
                                earlier.c.id < outbox.c.id,
                                earlier.c.state.in_(("pending", "inflight"))))


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
        """Take up to ``limit`` due items, oldest first, in one transaction: concurrent workers never
        get the same item (PostgreSQL skips rows locked by another claim; SQLite serialises writers),
        and never an item whose business key has an earlier version still on its way.

        Items whose lease ran out (a dead worker's) come first, then pending ones walked in id order
        along ``ix_outbox_claim``: the walk stops after ``limit`` items, so a claim costs the same
        with a backlog of a million items as with ten (ordering all due items did not)."""
        with translate_errors("claiming queued records"), self._engine.begin() as conn:
            items = self._claim_state(conn, adapter, "inflight", limit, now)
            if len(items) < limit:
                items += self._claim_state(conn, adapter, "pending", limit - len(items), now)
        return sorted(items, key=lambda item: int(item.id))

    def _claim_state(self, conn: Connection, adapter: str, state: str, limit: int,
                     now: datetime) -> list[OutboxItem]:
        due_at: ColumnElement[Any] = outbox.c.next_attempt_at
        if state == "pending" and conn.dialect.name == "sqlite":
            # A unary + keeps SQLite's planner off ix_outbox_due, whose range it would then sort whole.
            due_at = literal_column("+outbox.next_attempt_at", UtcDateTime())
        due = (select(outbox.c.id)
               .where(outbox.c.adapter == adapter, outbox.c.state == state,
                      due_at <= now, _no_earlier_open_version())
               .order_by(outbox.c.id).limit(limit).with_for_update(skip_locked=True))
        stmt = (update(outbox).where(outbox.c.id.in_(due.scalar_subquery()))
                .values(state="inflight", attempts=outbox.c.attempts + 1,
                        next_attempt_at=now + self._lease, updated_at=now)
                .returning(*outbox.c))
        return [OutboxItem.from_row(r) for r in conn.execute(stmt).mappings()]

    def complete(self, ids: Sequence[ItemId]) -> None:
        self._set(ids, "marking records delivered", state="done", last_error=None)

    def retry(self, ids: Sequence[ItemId], next_attempt_at: datetime, error: str) -> None:
        self._set(ids, "rescheduling records", state="pending", next_attempt_at=next_attempt_at,
                  last_error=error)

    def dead(self, ids: Sequence[ItemId], error: str) -> None:
        self._set(ids, "dead-lettering records", state="dead", last_error=error)

    def redrive(self, ids: Sequence[ItemId], now: datetime) -> list[ItemId]:
        """Put dead letters back in the queue, due now, with a fresh attempt count; the ids stay."""
        live = [item.id for item in map(self.get, ids) if item is not None and item.state == "dead"]
        self._set(live, "redriving dead letters", state="pending", next_attempt_at=now, attempts=0,
                  where_state="dead")
        return live

    def discard(self, ids: Sequence[ItemId], reason: str) -> int:
        """Close dead letters for good; the reason stays on the item (and in the journey)."""
        live = [item.id for item in map(self.get, ids) if item is not None and item.state == "dead"]
        self._set(live, "discarding dead letters", state="done", last_error=DISCARDED_PREFIX + reason,
                  where_state="dead")
        return len(live)

    def dead_letters(self, where: DeadLetterFilter, limit: int = 100) -> list[OutboxItem]:
        stmt = select(outbox).where(outbox.c.state == "dead")
        for column, value in ((outbox.c.adapter, where.adapter), (outbox.c.kind, where.kind),
                              (outbox.c.department, where.department), (outbox.c.record_id, where.record_id)):
            if value is not None:
                stmt = stmt.where(column == value)
        if where.error_contains is not None:
            stmt = stmt.where(outbox.c.last_error.contains(where.error_contains, autoescape=True))
        with translate_errors("listing dead letters"), self._engine.connect() as conn:
            rows = conn.execute(stmt.order_by(outbox.c.id).limit(limit)).mappings()
            return [OutboxItem.from_row(r) for r in rows]

    def depth(self, adapter: str) -> int:
        """Items not yet delivered nor dead: pending and in flight."""
        stmt = select(func.count()).select_from(outbox).where(
            outbox.c.adapter == adapter, outbox.c.state.in_(("pending", "inflight")))
        with translate_errors("measuring the outbox"), self._engine.connect() as conn:
            return int(conn.execute(stmt).scalar_one())

    def get(self, item_id: ItemId) -> OutboxItem | None:
        try:
            key = int(item_id)
        except ValueError:
            return None
        if not 0 < key < 2**63:  # no such row; and SQLite refuses a larger integer (OverflowError)
            return None
        with translate_errors("reading the outbox"), self._engine.connect() as conn:
            row = conn.execute(select(outbox).where(outbox.c.id == key)).mappings().first()
        return None if row is None else OutboxItem.from_row(row)

    def pending_rows(self, limit: int) -> list[OutboxItem]:
        """Rows not yet handed on, oldest first (the relay to a Redis outbox reads these)."""
        stmt = select(outbox).where(outbox.c.state == "pending").order_by(outbox.c.id).limit(limit)
        with translate_errors("reading the outbox"), self._engine.connect() as conn:
            return [OutboxItem.from_row(r) for r in conn.execute(stmt).mappings()]

    def forget(self, ids: Sequence[ItemId]) -> None:
        """Delete rows handed on to another outbox."""
        if ids:
            with translate_errors("clearing handed-on rows"), self._engine.begin() as conn:
                conn.execute(outbox.delete().where(outbox.c.id.in_([int(i) for i in ids])))

    def _set(self, ids: Sequence[ItemId], action: str, *, where_state: str | None = None, **values: Any) -> None:
        if not ids:
            return
        values.setdefault("updated_at", datetime.now(UTC))
        stmt = update(outbox).where(outbox.c.id.in_([int(i) for i in ids])).values(**values)
        if where_state is not None:
            stmt = stmt.where(outbox.c.state == where_state)
        with translate_errors(action), self._engine.begin() as conn:
            conn.execute(stmt)
