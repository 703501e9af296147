"""Accepted records: duplicate detection and the history that cross-record rules read.

Lookups go through ``business_key_hash`` (see ``gateway.stores.keys``): the plain key is stored only
for kinds whose key holds no personal information. The record itself is kept as JSON; encrypting
its PII fields at rest is a later step of the stores.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.dml import Insert

from gateway.errors import ConfigError
from gateway.record_view import BatchView
from gateway.stores.bulk import BulkValues, by_key_hashes_sql, insert_rows, marks
from gateway.stores.db import reading, translate_errors
from gateway.stores.keys import BusinessKey, key_hash, plain_key
from gateway.stores.schema import accepted_records

__all__ = ["AcceptedRecords", "AcceptedRow", "insert_ignoring_conflicts", "key_hash"]

INSPECTION = "inspection"


@dataclass(frozen=True, slots=True)
class AcceptedRow:
    record_id: str
    kind: str
    business_key: BusinessKey
    record: Mapping[str, Any]
    connector: str
    accepted_at: datetime
    department: str | None = None
    source_record_id: str | None = None


def insert_ignoring_conflicts(conn: Connection, table: Any, index_elements: Sequence[str]) -> Insert:
    """INSERT ... ON CONFLICT DO NOTHING: a re-sent batch after a lost acknowledgement is a no-op."""
    name = conn.dialect.name
    if name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing(index_elements=list(index_elements))
    if name == "sqlite":
        return sqlite.insert(table).on_conflict_do_nothing(index_elements=list(index_elements))
    raise ConfigError(f"stores.url: unsupported database {name!r}")


ACCEPTED_COLUMNS = ("record_id", "kind", "business_key_hash", "business_key", "operation", "source_record_id",
                    "department", "connector", "record", "accepted_at", "envelope_id", "location", "queued")


def insert_accepted(conn: Connection, rows: Sequence[AcceptedRow], secret: bytes | None,
                    values: BulkValues | None = None) -> None:
    if not rows:
        return
    v = values or BulkValues.of(conn, secret)
    insert_accepted_values(conn, [
        (r.record_id, r.kind, v.key_hash(r.kind, r.business_key), plain_key(r.kind, r.business_key),
         str(r.record.get("operation", "i")), r.source_record_id, r.department, r.connector, v.json(r.record),
         v.ts(r.accepted_at), None, None, None)
        for r in rows
    ])


def insert_accepted_values(conn: Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    """Rows encoded already (``ACCEPTED_COLUMNS``, see ``BulkValues``); a record id stored already
    is skipped (a batch re-sent after a lost acknowledgement)."""
    insert_rows(conn, accepted_records, ACCEPTED_COLUMNS, rows, on_conflict=("record_id",))


class AcceptedRecords:
    """Implements ``mapping.rules.RecordHistory`` (and ``AcceptedValues``) over the store."""

    def __init__(self, engine: Engine, *, key_secret: bytes | None = None) -> None:
        self._engine = engine
        self._secret = key_secret

    def add(self, rows: Sequence[AcceptedRow]) -> None:
        with translate_errors("recording accepted records"), self._engine.begin() as conn:
            insert_accepted(conn, rows, self._secret)

    def is_duplicate(self, record_id: str) -> bool:
        stmt = select(accepted_records.c.record_id).where(accepted_records.c.record_id == record_id)
        with translate_errors("checking a duplicate"), reading(self._engine) as conn:
            return conn.execute(stmt).first() is not None

    def latest_for_key(self, kind: str, business_key_hash: str) -> str | None:
        """The record_id of the latest accepted version of a business key."""
        latest = self._latest(kind, business_key_hash)
        return None if latest is None else str(latest["record_id"])

    def has_accepted(self, kind: str, business_key: tuple[str, ...]) -> bool:
        """True when the latest accepted version of the key exists and is not a deletion."""
        latest = self._latest(kind, key_hash(kind, business_key, self._secret))
        return latest is not None and latest["operation"] != "d"

    def has_inspection(self, implementing_org_uscc: str, check_action_no: str) -> bool:
        return self.has_accepted(INSPECTION, (implementing_org_uscc, check_action_no))

    def accepted_value(self, kind: str, business_key: tuple[str, ...], field: str) -> Any:
        """One field of the latest accepted version of the key (None when absent or deleted)."""
        latest = self._latest(kind, key_hash(kind, business_key, self._secret), with_record=True)
        if latest is None or latest["operation"] == "d":
            return None
        return latest["record"].get(field)

    def snapshot(self, record_ids: Collection[str], keys: Collection[tuple[str, tuple[str, ...]]]) -> BatchView:
        """What ingest needs to know about a whole envelope, in a few queries instead of one per record:
        which of ``record_ids`` are accepted already, and the latest operation of each business key."""
        hashed = {key_hash(kind, key, self._secret): (kind, key) for kind, key in keys}
        known: set[str] = set()
        latest: dict[tuple[str, tuple[str, ...]], tuple[str, Mapping[str, Any] | None]] = {}
        t = accepted_records
        by_kind: dict[str, list[str]] = {}
        for digest, (kind, _) in hashed.items():
            by_kind.setdefault(kind, []).append(digest)
        # Plain SQL through the driver: SQLAlchemy's expansion of a 500-item IN list costs more than
        # the lookup. The kind too, so that ix_accepted_records_key serves it (not a table scan).
        with translate_errors("reading accepted records"), reading(self._engine) as conn:
            dialect = conn.dialect.name
            for chunk in _chunks(list(record_ids)):
                sql = f"SELECT record_id FROM {t.name} WHERE record_id IN ({marks(dialect, len(chunk))})"  # noqa: S608
                known.update(row[0] for row in conn.exec_driver_sql(sql, tuple(chunk)))
            for kind, digests in by_kind.items():
                for chunk in _chunks(digests):
                    sql, params = _latest_operations_sql(dialect, kind, chunk)
                    for key_digest, operation in conn.exec_driver_sql(sql, params):  # each key's latest
                        wanted = hashed.get(key_digest)
                        if wanted is not None and wanted[0] == kind:
                            latest[wanted] = (operation, None)
        return BatchView(known, latest, self.accepted_value)

    def _latest(self, kind: str, hashed: str, *, with_record: bool = False) -> Any:
        t = accepted_records
        columns = [t.c.record_id, t.c.operation, *([t.c.record] if with_record else [])]
        stmt = (select(*columns).where(t.c.kind == kind, t.c.business_key_hash == hashed)
                .order_by(t.c.accepted_at.desc(), t.c.record_id.desc()).limit(1))
        with translate_errors("reading accepted records"), reading(self._engine) as conn:
            return conn.execute(stmt).mappings().first()


IN_CHUNK = 500  # bound parameters per IN (...) list; SQLite allows 32,766, PostgreSQL 65,535


def _latest_operations_sql(dialect: str, kind: str, digests: list[str]) -> tuple[str, tuple[Any, ...]]:
    """(business_key_hash, operation) of the latest accepted version of each of these keys of
    ``kind`` (one probe of ix_accepted_records_key per key: ``by_key_hashes_sql``)."""
    return by_key_hashes_sql(dialect, accepted_records.name, ("business_key_hash", "operation"), kind, digests,
                             latest=("accepted_at", "record_id"))


def _chunks(items: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(items), IN_CHUNK):
        yield items[start:start + IN_CHUNK]


@dataclass(frozen=True, slots=True)
class StoredRecord:
    """An accepted record as stored, for what happens to it later (a target's verdict, ops views)."""

    record_id: str
    kind: str
    business_key_hash: str
    department: str | None
    connector: str
    source_record_id: str | None
    record: Mapping[str, Any]


def find_accepted(engine: Engine, record_ids: Collection[str]) -> dict[str, StoredRecord]:
    """The accepted records of these ids (absent ids are left out), a query per chunk of ids."""
    t = accepted_records
    found: dict[str, StoredRecord] = {}
    with translate_errors("reading accepted records"), engine.connect() as conn:
        for chunk in _chunks(sorted(set(record_ids))):
            stmt = select(t.c.record_id, t.c.kind, t.c.business_key_hash, t.c.department, t.c.connector,
                          t.c.source_record_id, t.c.record).where(t.c.record_id.in_(chunk))
            for row in conn.execute(stmt).mappings():
                found[row["record_id"]] = StoredRecord(**row)
    return found
