"""The rejections ledger: records whose data is wrong, owned by the department that provided them.

A rejection keeps the raw source record (so a fixed mapping can re-map it), every finding, and a
due date 5 working days after the Asia/Shanghai date of rejection. It is resolved when a corrected
record with the same business key is accepted. A newer rejection of the same business key
supersedes the open older ones and inherits the earliest due date: sending the data again still
wrong does not restart the clock.
"""

from __future__ import annotations

import base64
import builtins
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, RowMapping, bindparam, func, select, update
from sqlalchemy.sql.elements import ColumnElement

from gateway.stores.bulk import BulkValues, by_key_hashes_sql, insert_rows
from gateway.stores.db import translate_errors
from gateway.stores.keys import BusinessKey, optional_hash, plain_key
from gateway.stores.schema import rejections
from mapping.findings import Finding

SHANGHAI = ZoneInfo("Asia/Shanghai")
CORRECTION_WORKING_DAYS = 5
_IN_CHUNK = 500  # bound parameters per IN list, well under every backend's limit
RejectionStatus = Literal["open", "resolved", "superseded"]
FindingLike = Finding | Mapping[str, Any]


class WorkingDays(Protocol):
    """The official working-day calendar (``mapping.calendar.WorkingCalendar``)."""

    def add_working_days(self, start: date, days: int) -> date: ...


@dataclass(frozen=True, slots=True)
class RejectedRow:
    """A record to put in the ledger. ``raw_payload`` is the source record as received: a JSON-like
    tree, text, or bytes (kept as base64). ``target`` is None when the gateway rejected it."""

    kind: str
    connector: str
    rejected_at: datetime
    errors: Sequence[FindingLike]
    warnings: Sequence[FindingLike] = ()
    business_key: BusinessKey | None = None
    department: str | None = None
    source_record_id: str | None = None
    record_id: str | None = None
    raw_payload: Any = None
    location: str | None = None
    target: str | None = None
    variant: str | None = None


@dataclass(frozen=True, slots=True)
class Rejection:
    id: int
    record_id: str | None
    kind: str
    business_key: str | None
    business_key_hash: str | None
    department: str | None
    connector: str
    target: str | None
    source_record_id: str | None
    raw_payload: Any
    errors: list[dict[str, Any]]
    warnings: list[dict[str, Any]]
    location: str | None
    status: RejectionStatus
    rejected_at: datetime
    due_on: date
    resolved_at: datetime | None
    resolved_by_record_id: str | None
    variant: str | None

    @classmethod
    def from_row(cls, row: RowMapping) -> Rejection:
        return cls(**{name: row[name] for name in _COLUMNS})


_COLUMNS = [c.name for c in rejections.columns]


def due_date(rejected_at: datetime, calendar: WorkingDays) -> date:
    """5 working days after the Asia/Shanghai calendar date of ``rejected_at``."""
    return calendar.add_working_days(rejected_at.astimezone(SHANGHAI).date(), CORRECTION_WORKING_DAYS)


def finding_dicts(findings: Sequence[FindingLike]) -> list[dict[str, Any]]:
    return [f.as_dict() if isinstance(f, Finding) else dict(f) for f in findings]


def raw_for_json(raw: Any) -> Any:
    if isinstance(raw, bytes | bytearray):
        return {"encoding": "base64", "data": base64.b64encode(raw).decode("ascii")}
    return raw


REJECTION_COLUMNS = ("record_id", "kind", "business_key", "business_key_hash", "department", "connector", "target",
                     "source_record_id", "raw_payload", "errors", "warnings", "location", "status", "rejected_at",
                     "due_on", "resolved_at", "resolved_by_record_id", "variant")


def insert_rejections(conn: Connection, rows: Sequence[RejectedRow], calendar: WorkingDays,
                      secret: bytes | None, values: BulkValues | None = None) -> None:
    """New rejections, as one driver-level insert (a chunk of a file may reject every row)."""
    found = rejection_values(conn, rows, calendar, secret)
    if not found:
        return
    v = values or BulkValues.of(conn, secret)
    insert_rows(conn, rejections, REJECTION_COLUMNS, [
        (d["record_id"], d["kind"], d["business_key"], d["business_key_hash"], d["department"], d["connector"],
         d["target"], d["source_record_id"], v.json_once(d["raw_payload"]), v.json_once(d["errors"]),
         v.json_once(d["warnings"]), d["location"], d["status"], v.ts(d["rejected_at"]), v.day(d["due_on"]),
         v.ts(d["resolved_at"]), d["resolved_by_record_id"], d["variant"])
        for d in found])


def rejection_values(conn: Connection, rows: Sequence[RejectedRow], calendar: WorkingDays,
                     secret: bytes | None) -> builtins.list[dict[str, Any]]:
    """Column values for new rejections, in order. Open rejections of the same key, stored or earlier
    in ``rows``, are superseded by the last one, which inherits the earliest due date."""
    due_on: dict[datetime, date] = {}  # a batch's rows share their time: one calendar walk
    values = [_values(row, calendar, secret, due_on) for row in rows]
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for value in values:
        if value["business_key_hash"] is None:
            continue
        key = (value["kind"], value["business_key_hash"])
        earlier = latest.get(key)
        if earlier is not None:
            _mark_superseded(earlier, value)
            value["due_on"] = min(value["due_on"], earlier["due_on"])
        latest[key] = value
    if latest:
        _supersede_stored(conn, latest)
    return values


def _values(row: RejectedRow, calendar: WorkingDays, secret: bytes | None,
            due_on: dict[datetime, date]) -> dict[str, Any]:
    due = due_on.get(row.rejected_at)
    if due is None:
        due = due_on[row.rejected_at] = due_date(row.rejected_at, calendar)
    # A key with an absent part names no record (two rows missing their key are two records): not
    # kept, so such a rejection neither supersedes nor is superseded, and stays open until its fix.
    key = row.business_key if row.business_key and all(row.business_key) else None
    return {
        "record_id": row.record_id, "kind": row.kind, "business_key": plain_key(row.kind, key),
        "business_key_hash": optional_hash(row.kind, key, secret),
        "department": row.department, "connector": row.connector, "target": row.target,
        "source_record_id": row.source_record_id, "raw_payload": raw_for_json(row.raw_payload),
        "errors": finding_dicts(row.errors), "warnings": finding_dicts(row.warnings),
        "location": row.location, "status": "open", "rejected_at": row.rejected_at,
        "due_on": due, "resolved_at": None, "resolved_by_record_id": None, "variant": row.variant,
    }


def _mark_superseded(earlier: dict[str, Any], later: dict[str, Any]) -> None:
    earlier.update(status="superseded", resolved_at=later["rejected_at"],
                   resolved_by_record_id=later["record_id"])


def _supersede_stored(conn: Connection, latest: Mapping[tuple[str, str], dict[str, Any]]) -> None:
    """Supersede the stored open rejections of the keys by the latest new row of each key, which
    inherits the earliest due date. One SELECT per chunk of keys: most batches match none."""
    hashes = sorted({key_hash for _, key_hash in latest})
    updates = []
    for start in range(0, len(hashes), _IN_CHUNK):
        stmt = select(rejections.c.id, rejections.c.kind, rejections.c.business_key_hash, rejections.c.due_on
                      ).where(rejections.c.status == "open",
                              rejections.c.business_key_hash.in_(hashes[start:start + _IN_CHUNK]))
        for rid, kind, key_hash, due_on in conn.execute(stmt):
            later = latest.get((kind, key_hash))
            if later is None:
                continue
            later["due_on"] = min(later["due_on"], due_on)
            updates.append({"b_id": rid, "b_at": later["rejected_at"], "b_by": later["record_id"]})
    if updates:
        conn.execute(update(rejections).where(rejections.c.id == bindparam("b_id")).values(
            status="superseded", resolved_at=bindparam("b_at"), resolved_by_record_id=bindparam("b_by")),
            updates)


@dataclass(frozen=True, slots=True)
class Resolution:
    """An accepted record that resolves the open rejections of its business key."""

    kind: str
    business_key_hash: str
    record_id: str
    at: datetime


def resolve_keys(conn: Connection, resolutions: Sequence[Resolution]) -> int:
    """Resolve the open rejections of the keys; returns how many. One SELECT per chunk of keys."""
    return resolve_hashes(conn, {(r.kind, r.business_key_hash): (r.record_id, r.at) for r in resolutions})


def _open_by_key_sql(dialect: str, kind: str, digests: list[str]) -> tuple[str, tuple[Any, ...]]:
    """(id, business_key_hash) of the open rejections of these keys of ``kind``: with the kind,
    ix_rejections_key serves the lookup instead of a scan of the open ones (one probe per key on
    PostgreSQL: ``by_key_hashes_sql``)."""
    return by_key_hashes_sql(dialect, rejections.name, ("id", "business_key_hash"), kind, digests,
                             also="status = 'open'")


def resolve_hashes(conn: Connection, resolutions: Mapping[tuple[str, str], tuple[str, datetime]]) -> int:
    """``resolve_keys`` for (kind, business key hash) -> (record id, at): every accepted record of an
    ingest write comes here, and most keys have no open rejection, so the lookup is plain SQL
    through the driver (SQLAlchemy's expansion of a 500-item IN list costs more than the lookup)."""
    by_kind: dict[str, set[str]] = {}
    for kind, key_hash in resolutions:
        by_kind.setdefault(kind, set()).add(key_hash)
    dialect = conn.dialect.name
    updates = []
    for kind, found_hashes in by_kind.items():
        hashes = sorted(found_hashes)
        for start in range(0, len(hashes), _IN_CHUNK):
            sql, params = _open_by_key_sql(dialect, kind, hashes[start:start + _IN_CHUNK])
            for rid, key_hash in conn.exec_driver_sql(sql, params):
                found = resolutions.get((kind, key_hash))
                if found is not None:
                    updates.append({"b_id": rid, "b_at": found[1], "b_by": found[0]})
    if updates:
        conn.execute(update(rejections).where(rejections.c.id == bindparam("b_id")).values(
            status="resolved", resolved_at=bindparam("b_at"), resolved_by_record_id=bindparam("b_by")),
            updates)
    return len(updates)


class RejectionsLedger:
    def __init__(self, engine: Engine, calendar: WorkingDays, *, key_secret: bytes | None = None) -> None:
        self._engine = engine
        self._calendar = calendar
        self._secret = key_secret

    def add(self, row: RejectedRow) -> int:
        with translate_errors("recording a rejection"), self._engine.begin() as conn:
            values = rejection_values(conn, [row], self._calendar, self._secret)[0]
            return int(conn.execute(rejections.insert().returning(rejections.c.id), values).scalar_one())

    def get(self, rejection_id: int) -> Rejection | None:
        with translate_errors("reading a rejection"), self._engine.connect() as conn:
            row = conn.execute(select(rejections).where(rejections.c.id == rejection_id)).mappings().first()
        return None if row is None else Rejection.from_row(row)

    def list(self, department: str | None = None, status: RejectionStatus | None = None,
             due_before: date | None = None, *, limit: int = 100,
             offset: int = 0) -> builtins.list[Rejection]:
        """Newest first; ``due_before`` keeps those due strictly before the date (overdue: today)."""
        stmt = (select(rejections).where(*self._filters(department, status, due_before))
                .order_by(rejections.c.rejected_at.desc(), rejections.c.id.desc())
                .limit(limit).offset(offset))
        with translate_errors("listing rejections"), self._engine.connect() as conn:
            return [Rejection.from_row(r) for r in conn.execute(stmt).mappings()]

    def count(self, department: str | None = None, status: RejectionStatus | None = None,
              due_before: date | None = None) -> int:
        stmt = select(func.count()).select_from(rejections).where(
            *self._filters(department, status, due_before))
        with translate_errors("counting rejections"), self._engine.connect() as conn:
            return int(conn.execute(stmt).scalar_one())

    def resolve_by_business_key(self, kind: str, business_key_hash: str, record_id: str,
                                at: datetime | None = None) -> int:
        moment = at or datetime.now(SHANGHAI)
        with translate_errors("resolving rejections"), self._engine.begin() as conn:
            return resolve_keys(conn, [Resolution(kind, business_key_hash, record_id, moment)])

    @staticmethod
    def _filters(department: str | None, status: str | None,
                 due_before: date | None) -> builtins.list[ColumnElement[bool]]:
        filters: builtins.list[ColumnElement[bool]] = []
        if department is not None:
            filters.append(rejections.c.department == department)
        if status is not None:
            filters.append(rejections.c.status == status)
        if due_before is not None:
            filters.append(rejections.c.due_on < due_before)
        return filters
