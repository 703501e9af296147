"""API keys issued through the API or the CLI: department keys and named staff tokens.

A key is shown once, when issued; only its SHA-256 digest is stored (``gateway.auth``), and lists
show a fingerprint (the first 12 hex digits of the digest). Rotating issues a new key and lets the
old one live for a grace period; revoking ends a key at once.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, RowMapping, or_, select, update

from gateway.auth import hash_api_key, new_api_key
from gateway.stores.db import translate_errors
from gateway.stores.schema import api_keys


def fingerprint(key_hash: str) -> str:
    return key_hash.removeprefix("sha256:")[:12]


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: int
    name: str
    role: str
    department: str | None
    key_hash: str
    created_at: datetime
    created_by: str
    expires_at: datetime | None
    revoked_at: datetime | None
    replaced_by: int | None

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.key_hash)

    def active(self, now: datetime) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)

    def as_dict(self, now: datetime | None = None) -> dict[str, Any]:
        """The public view: never the digest, only its fingerprint."""
        moment = now or datetime.now(UTC)
        return {"id": self.id, "name": self.name, "role": self.role, "department": self.department,
                "fingerprint": self.fingerprint, "created_at": self.created_at.isoformat(),
                "created_by": self.created_by, "active": self.active(moment),
                "expires_at": self.expires_at.isoformat() if self.expires_at else None,
                "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
                "replaced_by": self.replaced_by}


def _from_row(row: RowMapping) -> ApiKey:
    return ApiKey(id=int(row["id"]), name=row["name"], role=row["role"], department=row["department"],
                  key_hash=row["key_hash"], created_at=row["created_at"], created_by=row["created_by"],
                  expires_at=row["expires_at"], revoked_at=row["revoked_at"], replaced_by=row["replaced_by"])


@dataclass(frozen=True, slots=True)
class IssuedKey:
    key: str  # shown once
    record: ApiKey


class KeyStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def issue(self, *, name: str, role: str, department: str | None, actor: str) -> IssuedKey:
        key, digest = new_api_key()
        with translate_errors("issuing a key"), self._engine.begin() as conn:
            new_id = conn.execute(api_keys.insert().returning(api_keys.c.id), {
                "key_hash": digest, "name": name, "role": role, "department": department,
                "created_at": datetime.now(UTC), "created_by": actor}).scalar_one()
        found = self.get(int(new_id))
        assert found is not None
        return IssuedKey(key, found)

    def get(self, key_id: int) -> ApiKey | None:
        with translate_errors("reading a key"), self._engine.connect() as conn:
            row = conn.execute(select(api_keys).where(api_keys.c.id == key_id)).mappings().first()
        return None if row is None else _from_row(row)

    def list(self, *, department: str | None = None, role: str | None = None,
             include_inactive: bool = False, limit: int = 100, offset: int = 0) -> builtins.list[ApiKey]:
        now = datetime.now(UTC)
        stmt = select(api_keys)
        if department is not None:
            stmt = stmt.where(api_keys.c.department == department)
        if role is not None:
            stmt = stmt.where(api_keys.c.role == role)
        if not include_inactive:
            stmt = stmt.where(api_keys.c.revoked_at.is_(None),
                              or_(api_keys.c.expires_at.is_(None), api_keys.c.expires_at > now))
        stmt = stmt.order_by(api_keys.c.id).limit(limit).offset(offset)
        with translate_errors("listing keys"), self._engine.connect() as conn:
            return [_from_row(r) for r in conn.execute(stmt).mappings()]

    def find_active(self, token: str) -> ApiKey | None:
        """The active key whose digest is the token's, if any (a lookup by digest: no key compared)."""
        now = datetime.now(UTC)
        stmt = select(api_keys).where(api_keys.c.key_hash == hash_api_key(token))
        with translate_errors("resolving a key"), self._engine.connect() as conn:
            row = conn.execute(stmt).mappings().first()
        if row is None:
            return None
        found = _from_row(row)
        return found if found.active(now) else None

    def revoke(self, key_id: int) -> tuple[ApiKey, ApiKey] | None:
        """Revoke now; returns (before, after), or None when there is no such key."""
        before = self.get(key_id)
        if before is None:
            return None
        if before.revoked_at is None:
            with translate_errors("revoking a key"), self._engine.begin() as conn:
                conn.execute(update(api_keys).where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
                             .values(revoked_at=datetime.now(UTC)))
        after = self.get(key_id)
        assert after is not None
        return before, after

    def revoke_department(self, department: str) -> int:
        with translate_errors("revoking a department's keys"), self._engine.begin() as conn:
            result = conn.execute(update(api_keys).where(api_keys.c.department == department,
                                                         api_keys.c.revoked_at.is_(None))
                                  .values(revoked_at=datetime.now(UTC)))
        return int(result.rowcount)

    def rotate(self, key_id: int, *, grace_s: float, actor: str) -> tuple[IssuedKey, ApiKey, ApiKey] | None:
        """A new key for the same holder; the old one expires after ``grace_s`` (0: at once).
        Returns (the new key, the old one before, the old one after), or None when unknown."""
        old = self.get(key_id)
        if old is None:
            return None
        issued = self.issue(name=old.name, role=old.role, department=old.department, actor=actor)
        now = datetime.now(UTC)
        ends = now + timedelta(seconds=grace_s)
        values: dict[str, Any] = {"replaced_by": issued.record.id}
        if grace_s <= 0:
            values["revoked_at"] = now
        elif old.expires_at is None or old.expires_at > ends:
            values["expires_at"] = ends
        with translate_errors("rotating a key"), self._engine.begin() as conn:
            conn.execute(update(api_keys).where(api_keys.c.id == key_id).values(**values))
        after = self.get(key_id)
        assert after is not None
        return issued, old, after
