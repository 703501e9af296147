"""The outbox: accepted records waiting for delivery, one item per (adapter, record).

States: ``pending`` (due at ``next_attempt_at``) -> ``inflight`` (claimed; ``next_attempt_at`` is
the lease's end, after which another worker may claim it again) -> ``done`` | ``pending`` (retry)
| ``dead`` (a dead letter, for ops to redrive or discard). ``attempts`` counts claims.

Per-key order: an item is claimed only when no earlier item of the same adapter and business key
is still pending or in flight, so versions of one record never overtake each other at a target
and never travel together.

An item queued by ingest with the record it accepted in the same transaction has no payload of
its own (NULL): the record is stored once, in ``accepted_records``, and read from there whenever
the item is handed out (claim, relay, ``get``, dead letters).

The ``Outbox`` protocol is what delivery and ops need; ``gateway.stores.sql_outbox.SqlOutbox``
implements it on the stores' database and ``gateway.stores.redis_outbox.RedisOutbox`` on Redis
Streams. Both pass ``tests/unit/test_outbox_contract.py``. The items, the rows queued, dead-letter
filters and settlements are here, with the SQL outbox's indexes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple, Protocol

from sqlalchemy import Connection, Index, RowMapping

from gateway.stores.bulk import BulkValues, insert_rows
from gateway.stores.keys import BusinessKey
from gateway.stores.schema import outbox

DEFAULT_LEASE_S = 300.0
DISCARDED_PREFIX = "discarded: "
ItemId = int | str

# The per-key ordering check needs it; belongs in schema.py (asked of the lead). Partial: it looks
# only for items still on their way, so delivered ones leave it, and it holds the backlog, not
# the history (whose random keys made every ingest write touch a page of it per record).
_ON_THE_WAY = outbox.c.state.in_(("pending", "inflight"))
Index("ix_outbox_key_order", outbox.c.adapter, outbox.c.business_key_hash, outbox.c.id,
      sqlite_where=_ON_THE_WAY, postgresql_where=_ON_THE_WAY)
# Claims walk the items of an adapter and state in id order, and stop at the batch size (the
# in-flight ones are a few batches, whatever the backlog): no index by due time is needed.
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


class OutboxItem(NamedTuple):
    """A claimed (or listed) item. A NamedTuple (``_replace`` makes a changed copy): a claim makes
    one per record, and a tuple is made in a third of the time of a frozen dataclass, immutable all
    the same."""

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
    insert_outbox_values(conn, out)


def insert_outbox_values(conn: Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    """Rows encoded already (``OUTBOX_COLUMNS``, see ``BulkValues``), in delivery order; a record
    queued already for the adapter is skipped. A NULL payload stands for the accepted record of
    the row's record id (written in the same transaction: ``IngestBatch.queue``)."""
    insert_rows(conn, outbox, OUTBOX_COLUMNS, rows, on_conflict=("adapter", "record_id"))


@dataclass(slots=True)
class Settlement:
    """A delivered batch's changes to the outbox, grouped so that each group is one statement:
    items done, items to try again (by due time and error) and dead letters (by error)."""

    done: list[ItemId] = field(default_factory=list)
    retries: dict[tuple[datetime, str], list[ItemId]] = field(default_factory=dict)
    dead: dict[str, list[ItemId]] = field(default_factory=dict)

    def retry(self, item_id: ItemId, next_attempt_at: datetime, error: str) -> None:
        self.retries.setdefault((next_attempt_at, error), []).append(item_id)

    def bury(self, item_id: ItemId, error: str) -> None:
        self.dead.setdefault(error, []).append(item_id)

    def apply(self, box: Outbox) -> None:
        """On any outbox, one call per group (``SqlOutbox.settle`` does it in a caller's transaction)."""
        for (at, error), ids in self.retries.items():
            box.retry(ids, at, error)
        for error, ids in self.dead.items():
            box.dead(ids, error)
        box.complete(self.done)
