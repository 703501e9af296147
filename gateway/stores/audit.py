"""The audit log store: append-only, hash-chained entries (``gateway.audit.AuditTrail``).

Each entry's ``hash`` is the SHA-256 of its canonical form (seq, time, actor, action, target, the
before and after JSON, and the previous entry's hash). Changing, deleting or reordering a row
breaks the chain at that row; removing rows from the end is caught by the chain head (the
``audit_head`` row), which every writer locks, so concurrent writers are serialised on it
(``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite's ``BEGIN IMMEDIATE`` takes the write lock).
``before``/``after`` are stored as the canonical JSON text that was hashed, so the database's
JSON normalisation cannot break the chain.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, select, update
from sqlalchemy.sql.elements import ColumnElement

from gateway.stores.db import translate_errors
from gateway.stores.records import insert_ignoring_conflicts
from gateway.stores.schema import audit_head, audit_log

GENESIS = "0" * 64
HEAD_ID = 1


def canonical_json(value: Any) -> str | None:
    if value is None:
        return None
    return orjson.dumps(value, default=str, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS).decode()


def entry_hash(seq: int, at: datetime, actor: str, action: str, target: str,
               before: str | None, after: str | None, prev_hash: str) -> str:
    body = orjson.dumps([seq, at.astimezone(UTC).isoformat(), actor, action, target, before, after, prev_hash])
    return hashlib.sha256(body).hexdigest()


@dataclass(frozen=True, slots=True)
class AuditEntry:
    seq: int
    at: datetime
    actor: str
    action: str
    target: str
    before: Any
    after: Any
    prev_hash: str
    hash: str

    def as_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "at": self.at.isoformat(), "actor": self.actor, "action": self.action,
                "target": self.target, "before": self.before, "after": self.after,
                "prev_hash": self.prev_hash, "hash": self.hash}


@dataclass(frozen=True, slots=True)
class AuditFilter:
    actor: str | None = None
    action: str | None = None
    target: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def conditions(self) -> list[ColumnElement[bool]]:
        t = audit_log.c
        out: list[ColumnElement[bool]] = []
        if self.actor is not None:
            out.append(t.actor == self.actor)
        if self.action is not None:
            out.append(t.action == self.action)
        if self.target is not None:
            out.append(t.target == self.target)
        if self.since is not None:
            out.append(t.at >= self.since)
        if self.until is not None:
            out.append(t.at < self.until)
        return out


@dataclass(frozen=True, slots=True)
class Verification:
    ok: bool
    entries: int
    first_bad_seq: int | None = None
    reason: str | None = None


class SqlAuditLog:
    """Implements ``gateway.audit.AuditTrail`` over the gateway's database."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def record(self, actor: str, action: str, target: str, *, before: Any = None, after: Any = None) -> None:
        with translate_errors("writing the audit log"), self._engine.begin() as conn:
            self._append(conn, actor, action, target, canonical_json(before), canonical_json(after))

    @staticmethod
    def _append(conn: Connection, actor: str, action: str, target: str,
                before: str | None, after: str | None) -> None:
        conn.execute(insert_ignoring_conflicts(conn, audit_head, ["id"]),
                     {"id": HEAD_ID, "seq": 0, "hash": GENESIS})
        head = conn.execute(select(audit_head.c.seq, audit_head.c.hash)
                            .where(audit_head.c.id == HEAD_ID).with_for_update()).one()
        seq, prev = int(head.seq) + 1, str(head.hash)
        at = datetime.now(UTC)
        digest = entry_hash(seq, at, actor, action, target, before, after, prev)
        conn.execute(audit_log.insert(), {"seq": seq, "at": at, "actor": actor, "action": action, "target": target,
                                          "before": before, "after": after, "prev_hash": prev, "hash": digest})
        conn.execute(update(audit_head).where(audit_head.c.id == HEAD_ID).values(seq=seq, hash=digest))

    def list(self, where: AuditFilter = AuditFilter(), *, limit: int = 100, offset: int = 0) -> list[AuditEntry]:
        """Newest first."""
        stmt = (select(audit_log).where(*where.conditions())
                .order_by(audit_log.c.seq.desc()).limit(limit).offset(offset))
        with translate_errors("reading the audit log"), self._engine.connect() as conn:
            return [_entry(row) for row in conn.execute(stmt).mappings()]

    def verify(self, *, batch: int = 1000) -> Verification:
        """Walk the chain from the start; the first entry whose position, link or hash is wrong."""
        expected_seq, prev = 1, GENESIS
        with translate_errors("verifying the audit log"), self._engine.connect() as conn:
            while True:
                rows = conn.execute(select(audit_log).where(audit_log.c.seq >= expected_seq)
                                    .order_by(audit_log.c.seq).limit(batch)).mappings().all()
                for row in rows:
                    problem = _check(row, expected_seq, prev)
                    if problem is not None:
                        return Verification(False, expected_seq - 1, min(int(row["seq"]), expected_seq), problem)
                    expected_seq, prev = expected_seq + 1, str(row["hash"])
                if len(rows) < batch:
                    break
            head = conn.execute(select(audit_head.c.seq, audit_head.c.hash)
                                .where(audit_head.c.id == HEAD_ID)).first()
        entries = expected_seq - 1
        head_seq, head_hash = (0, GENESIS) if head is None else (int(head.seq), str(head.hash))
        if (head_seq, head_hash) != (entries, prev):
            return Verification(False, entries, entries + 1 if head_seq > entries else head_seq,
                                "the chain head does not match the last entry (entries removed or added)")
        return Verification(True, entries)


def _check(row: Any, expected_seq: int, prev: str) -> str | None:
    if int(row["seq"]) != expected_seq:
        return f"entry {expected_seq} is missing"
    if row["prev_hash"] != prev:
        return "the link to the previous entry is broken"
    digest = entry_hash(expected_seq, row["at"], row["actor"], row["action"], row["target"],
                        row["before"], row["after"], row["prev_hash"])
    if digest != row["hash"]:
        return "the entry was changed"
    return None


def _entry(row: Any) -> AuditEntry:
    return AuditEntry(seq=int(row["seq"]), at=row["at"], actor=row["actor"], action=row["action"],
                      target=row["target"], before=_loads(row["before"]), after=_loads(row["after"]),
                      prev_hash=row["prev_hash"], hash=row["hash"])


def _loads(text: str | None) -> Any:
    return None if text is None else orjson.loads(text)

