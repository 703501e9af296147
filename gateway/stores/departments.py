"""Departments: the agencies that provide data, onboarded through the API or the config file.

Contacts are personal information: they are kept for the admins, masked in list answers and
never logged. Departments from the config file are seeded at start (``seed``): a missing one is
created, an existing one takes the name, USCC and region the file gives; the rest (level,
contacts) is edited through the API.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, RowMapping, delete, func, select, update
from sqlalchemy.exc import IntegrityError

from gateway.settings import DepartmentSettings
from gateway.stores.db import translate_errors
from gateway.stores.schema import departments


@dataclass(frozen=True, slots=True)
class Contact:
    name: str
    phone: str | None = None
    email: str | None = None


@dataclass(frozen=True, slots=True)
class Department:
    code: str
    name: str
    region: str | None = None
    level: str | None = None
    uscc: str | None = None
    contacts: tuple[Contact, ...] = ()
    from_config: bool = False
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    updated_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def audit_view(self) -> dict[str, Any]:
        """What the audit log keeps: contacts by count only (they are personal information)."""
        return {"code": self.code, "name": self.name, "region": self.region, "level": self.level,
                "uscc": self.uscc, "contacts": len(self.contacts)}


class DepartmentExists(Exception):
    """A department with this code exists already."""


def _contacts_json(contacts: Iterable[Contact]) -> list[dict[str, Any]]:
    return [{"name": c.name, "phone": c.phone, "email": c.email} for c in contacts]


def _from_row(row: RowMapping) -> Department:
    contacts = tuple(Contact(name=c.get("name", ""), phone=c.get("phone"), email=c.get("email"))
                     for c in row["contacts"] or [])
    return Department(code=row["code"], name=row["name"], region=row["region"], level=row["level"],
                      uscc=row["uscc"], contacts=contacts, from_config=bool(row["from_config"]),
                      created_at=row["created_at"], updated_at=row["updated_at"])


EDITABLE = frozenset({"name", "region", "level", "uscc", "contacts"})


class DepartmentStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def get(self, code: str) -> Department | None:
        with translate_errors("reading a department"), self._engine.connect() as conn:
            row = conn.execute(select(departments).where(departments.c.code == code)).mappings().first()
        return None if row is None else _from_row(row)

    def list(self, *, limit: int = 100, offset: int = 0) -> builtins.list[Department]:
        stmt = select(departments).order_by(departments.c.code).limit(limit).offset(offset)
        with translate_errors("listing departments"), self._engine.connect() as conn:
            return [_from_row(r) for r in conn.execute(stmt).mappings()]

    def count(self) -> int:
        with translate_errors("counting departments"), self._engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(departments)).scalar_one())

    def create(self, department: Department) -> Department:
        now = datetime.now(UTC)
        values = {"code": department.code, "name": department.name, "region": department.region,
                  "level": department.level, "uscc": department.uscc,
                  "contacts": _contacts_json(department.contacts), "from_config": int(department.from_config),
                  "created_at": now, "updated_at": now}
        with translate_errors("creating a department"):
            try:
                with self._engine.begin() as conn:
                    conn.execute(departments.insert(), values)
            except IntegrityError as exc:  # the primary key: the code is taken
                raise DepartmentExists(department.code) from exc
        created = self.get(department.code)
        assert created is not None
        return created

    def update(self, code: str, changes: Mapping[str, Any]) -> tuple[Department, Department] | None:
        """Apply ``changes`` (fields of ``EDITABLE``); returns (before, after), or None when unknown."""
        unknown = set(changes) - EDITABLE
        if unknown:
            raise ValueError(f"not editable: {sorted(unknown)}")
        values = dict(changes)
        if "contacts" in values:
            values["contacts"] = _contacts_json(values["contacts"])
        with translate_errors("updating a department"), self._engine.begin() as conn:
            row = conn.execute(select(departments).where(departments.c.code == code)).mappings().first()
            if row is None:
                return None
            conn.execute(update(departments).where(departments.c.code == code)
                         .values(**values, updated_at=datetime.now(UTC)))
            after = conn.execute(select(departments).where(departments.c.code == code)).mappings().one()
        return _from_row(row), _from_row(after)

    def delete(self, code: str) -> Department | None:
        with translate_errors("deleting a department"), self._engine.begin() as conn:
            row = conn.execute(select(departments).where(departments.c.code == code)).mappings().first()
            if row is None:
                return None
            conn.execute(delete(departments).where(departments.c.code == code))
        return _from_row(row)

    def seed(self, configured: Iterable[DepartmentSettings]) -> int:
        """Create or refresh the departments of the config file; returns how many were created."""
        created = 0
        now = datetime.now(UTC)
        with translate_errors("seeding departments"), self._engine.begin() as conn:
            existing = set(conn.execute(select(departments.c.code)).scalars())
            for d in configured:
                given = {"name": d.name, "from_config": 1, "updated_at": now,
                         **({"uscc": d.provider_uscc} if d.provider_uscc else {}),
                         **({"region": d.admin_division_code} if d.admin_division_code else {})}
                if d.code in existing:
                    conn.execute(update(departments).where(departments.c.code == d.code).values(**given))
                else:
                    conn.execute(departments.insert(), {"code": d.code, "contacts": [], "created_at": now,
                                                        "region": None, "uscc": None, "level": None, **given})
                    created += 1
        return created
