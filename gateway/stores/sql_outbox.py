"""The outbox on the stores' database (SQLite embedded, PostgreSQL): ``SqlOutbox``.

Claims are one ``UPDATE ... RETURNING`` per state through the driver; an item whose payload is
NULL (queued by ingest with its accepted record) reads the record from ``accepted_records``. The
item states and the per-key order are described in ``gateway.stores.outbox``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from operator import attrgetter
from typing import Any

from sqlalchemy import Connection, Engine, func, select

from gateway.stores.bulk import BulkValues, marks
from gateway.stores.db import loads_json, translate_errors
from gateway.stores.outbox import (
    DEFAULT_LEASE_S,
    DISCARDED_PREFIX,
    DeadLetterFilter,
    ItemId,
    OutboxItem,
    OutboxRow,
    Settlement,
    insert_outbox,
)
from gateway.stores.schema import accepted_records, outbox


def outbox_adapters(conn: Connection) -> list[str]:
    """The adapters with items in the outbox, one index probe each (a recursive "loose index scan"
    of ix_outbox_claim): ``SELECT DISTINCT adapter`` reads every item on SQLite and PostgreSQL alike."""
    sql = (f"WITH RECURSIVE a(adapter) AS (SELECT MIN(adapter) FROM {outbox.name}"  # noqa: S608  # our own table
           f" UNION ALL SELECT (SELECT MIN(adapter) FROM {outbox.name} WHERE adapter > a.adapter)"
           " FROM a WHERE a.adapter IS NOT NULL) SELECT adapter FROM a WHERE adapter IS NOT NULL")
    return [str(adapter) for (adapter,) in conn.exec_driver_sql(sql)]


def _payload_sql(dialect: str) -> str:
    """The payload column in plain SQL: SQLite hands the JSON text over as UTF-8 bytes, which
    orjson reads without a str in between."""
    return "CAST(payload AS BLOB)" if dialect == "sqlite" else "payload"


def _with_payloads(conn: Connection, rows: Sequence[Sequence[Any]], record_id_at: int,
                   at: int) -> list[Sequence[Any]]:
    """``rows`` with a NULL payload (column ``at``) replaced by the accepted record of the row's
    record id (column ``record_id_at``): ingest stores a record once. One query per ``_IN_CHUNK``
    such rows, by the records' primary key (SQLite uses no index for a subquery in ``RETURNING``)."""
    wanted = [row[record_id_at] for row in rows if row[at] is None]
    if not wanted:
        return list(rows)
    dialect = conn.dialect.name
    record = "CAST(record AS BLOB)" if dialect == "sqlite" else "record"
    found: dict[str, Any] = {}
    for start in range(0, len(wanted), _IN_CHUNK):
        chunk = wanted[start:start + _IN_CHUNK]
        sql = (f"SELECT record_id, {record} FROM {accepted_records.name}"  # noqa: S608  # our own table
               f" WHERE record_id IN ({marks(dialect, len(chunk))})")
        found.update((key, body) for key, body in conn.exec_driver_sql(sql, tuple(chunk)))
    return [row if row[at] is not None else (*row[:at], found.get(row[record_id_at]), *row[at + 1:])
            for row in rows]


def _item_columns() -> list[Any]:
    """The outbox's columns for ``OutboxItem.from_row``, a NULL payload read from the accepted
    record of the row's record id (ingest stores a record once)."""
    stored = (select(accepted_records.c.record).where(accepted_records.c.record_id == outbox.c.record_id)
              .scalar_subquery())
    payload = func.coalesce(outbox.c.payload, stored, type_=outbox.c.payload.type).label("payload")
    return [payload if column.name == "payload" else column for column in outbox.c]


_IN_CHUNK = 500  # item ids per IN list, well under every backend's limit on bound parameters


@lru_cache(maxsize=8)
def _claim_sql(dialect: str, state: str) -> str:
    """One claim as one statement through the driver: the ids of due items of one state walked in
    id order (skipping those whose key has an earlier version on its way) become ``inflight``,
    and come back. Parameters: lease end, now (updated_at), adapter, state, now, limit."""
    m = "?" if dialect == "sqlite" else "%s"
    lock = " FOR UPDATE SKIP LOCKED" if dialect == "postgresql" else ""
    # PostgreSQL turns NOT EXISTS into an anti-join; on a table it has no statistics for yet (a
    # new outbox filling faster than autovacuum analyses it) the planner joined every due item
    # to every queued item of the adapter: 1 s per claim of 500 at 10,000 items. ``OFFSET 0``
    # keeps the subquery a per-item probe of ix_outbox_key_order, whatever the statistics say.
    probe_end = " OFFSET 0" if dialect == "postgresql" else ""
    t = outbox.name
    return (f"UPDATE {t} SET state = 'inflight', attempts = attempts + 1, next_attempt_at = {m}, updated_at = {m}"  # noqa: S608
            f" WHERE id IN (SELECT {t}.id FROM {t} WHERE {t}.adapter = {m} AND {t}.state = {m}"
            f" AND {t}.next_attempt_at <= {m}"
            f" AND NOT EXISTS (SELECT 1 FROM {t} AS earlier WHERE earlier.adapter = {t}.adapter"
            f" AND earlier.business_key_hash = {t}.business_key_hash AND earlier.id < {t}.id"
            f" AND earlier.state IN ('pending', 'inflight'){probe_end}) ORDER BY {t}.id LIMIT {m}{lock})"
            f" RETURNING id, record_id, kind, business_key_hash, department, {_payload_sql(dialect)}, enqueued_at,"
            " attempts,"
            " last_error")


def _claimed_items(adapter: str, rows: Sequence[Sequence[Any]]) -> list[OutboxItem]:
    """Rows of ``_claim_sql`` as items in id order (RETURNING has none), decoded as the Core
    table's types would (JSON payload, aware UTC times); a batch's enqueue times, mostly a few
    envelopes', are converted once."""
    times: dict[Any, datetime] = {}
    items = []
    for item_id, record_id, kind, key_hash, department, payload, enqueued_at, attempts, last_error in rows:
        at = times.get(enqueued_at)
        if at is None:
            at = times[enqueued_at] = _utc(enqueued_at)
        if isinstance(payload, bytes | str):  # SQLite; psycopg decodes jsonb itself
            payload = loads_json(payload)
        # By position: keywords cost a dictionary per item.
        items.append(OutboxItem(item_id, adapter, record_id, kind, key_hash, department, payload, at, attempts,
                                "inflight", last_error))
    items.sort(key=attrgetter("id"))
    return items


def _utc(value: datetime | str) -> datetime:
    """A stored ``UtcDateTime`` as it reads back: SQLite has naive UTC text, PostgreSQL an aware datetime."""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _update_items(conn: Connection, ids: Sequence[ItemId], values: Mapping[str, Any], *,
                  where_state: str | None = None) -> None:
    """``UPDATE outbox SET values WHERE id IN ids`` through the driver, ``_IN_CHUNK`` ids a
    statement (the same statement for every full chunk); datetimes go in as ``UtcDateTime``
    stores them. ``values`` names columns: our own, never input."""
    if not ids:
        return
    dialect = conn.dialect.name
    v = BulkValues(dialect, None)
    assignments = ", ".join(f"{column} = {marks(dialect, 1)}" for column in values)
    head = [v.ts(x) if isinstance(x, datetime) else x for x in values.values()]
    tail = [] if where_state is None else [where_state]
    keys = [int(i) for i in ids]
    for start in range(0, len(keys), _IN_CHUNK):
        chunk = keys[start:start + _IN_CHUNK]
        sql = f"UPDATE {outbox.name} SET {assignments} WHERE id IN ({marks(dialect, len(chunk))})"  # noqa: S608
        if where_state is not None:
            sql += f" AND state = {marks(dialect, 1)}"
        conn.exec_driver_sql(sql, (*head, *chunk, *tail))


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
        with a backlog of a million items as with ten (ordering all due items did not).

        Plain SQL through the driver, one ``UPDATE ... RETURNING`` per state: read back through
        SQLAlchemy's result processing, the claimed rows cost more than claiming them."""
        with translate_errors("claiming queued records"), self._engine.begin() as conn:
            dialect = conn.dialect.name
            v = BulkValues(dialect, None)
            head = (v.ts(now + self._lease), v.ts(now), adapter)
            rows = list(conn.exec_driver_sql(_claim_sql(dialect, "inflight"), (*head, "inflight", v.ts(now), limit)))
            if len(rows) < limit:
                rows += conn.exec_driver_sql(_claim_sql(dialect, "pending"),
                                             (*head, "pending", v.ts(now), limit - len(rows)))
            claimed = _with_payloads(conn, rows, 1, 5)
        return _claimed_items(adapter, claimed)

    def settle(self, conn: Connection, settlement: Settlement) -> None:
        """A delivered batch's changes in the caller's transaction (with its journey steps)."""
        now = datetime.now(UTC)
        for (at, error), ids in settlement.retries.items():
            _update_items(conn, ids, {"state": "pending", "next_attempt_at": at, "last_error": error,
                                     "updated_at": now})
        for error, ids in settlement.dead.items():
            _update_items(conn, ids, {"state": "dead", "last_error": error, "updated_at": now})
        _update_items(conn, settlement.done, {"state": "done", "last_error": None, "updated_at": now})

    def delivered(self, conn: Connection, ids: Sequence[ItemId], step_id: int, now: datetime) -> None:
        """Items delivered with the journey step ``step_id`` (their records' shared "delivered"
        step), in the caller's transaction."""
        _update_items(conn, ids, {"state": "done", "last_error": None, "updated_at": now, "step_id": step_id})

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
        stmt = select(*_item_columns()).where(outbox.c.state == "dead")
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
            row = conn.execute(select(*_item_columns()).where(outbox.c.id == key)).mappings().first()
        return None if row is None else OutboxItem.from_row(row)

    def pending_rows(self, limit: int) -> list[OutboxItem]:
        """Rows not yet handed on, oldest first (the relay to a Redis outbox reads these after
        every ingest write: through the driver, decoded as the Core table would)."""
        with translate_errors("reading the outbox"), self._engine.connect() as conn:
            dialect = conn.dialect.name
            sql = (f"SELECT id, adapter, record_id, kind, business_key_hash, department, {_payload_sql(dialect)},"  # noqa: S608
                   f" enqueued_at, attempts, state, last_error FROM {outbox.name} WHERE state = 'pending'"
                   f" ORDER BY id LIMIT {marks(dialect, 1)}")
            rows = _with_payloads(conn, conn.exec_driver_sql(sql, (limit,)).all(), 2, 6)
        times: dict[Any, datetime] = {}
        items = []
        for item_id, adapter, record_id, kind, key_hash, department, body, enqueued_at, attempts, state, error in rows:
            at = times.get(enqueued_at)
            if at is None:
                at = times[enqueued_at] = _utc(enqueued_at)
            items.append(OutboxItem(item_id, adapter, record_id, kind, key_hash, department,
                                    loads_json(body) if isinstance(body, bytes | str) else body, at, attempts,
                                    state, error))
        return items

    def forget(self, rows: Sequence[OutboxItem]) -> None:
        """Delete rows handed on to another outbox: each by its id and record, since on SQLite a
        deleted row's id is given again to the next row inserted (no AUTOINCREMENT), and another
        instance's relay, which read the same rows, may forget them after new rows took their ids."""
        if not rows:
            return
        with translate_errors("clearing handed-on rows"), self._engine.begin() as conn:
            mark = marks(conn.dialect.name, 1)
            conn.exec_driver_sql(f"DELETE FROM {outbox.name} WHERE id = {mark} AND adapter = {mark}"  # noqa: S608
                                 f" AND record_id = {mark}", [(int(r.id), r.adapter, r.record_id) for r in rows])

    def _set(self, ids: Sequence[ItemId], action: str, *, where_state: str | None = None, **values: Any) -> None:
        if not ids:
            return
        values.setdefault("updated_at", datetime.now(UTC))
        with translate_errors(action), self._engine.begin() as conn:
            _update_items(conn, ids, values, where_state=where_state)
