"""Admin routes for departments: onboarding (create, read, update, delete) and their API keys.

Admins change them; every role reads them, a department only its own entry. Contacts are
personal information: list answers mask them; the single entry shows them in clear to admins and
to the department itself only.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field, model_validator

from gateway.api.authz import Allow, Principal, Role, department_scope
from gateway.api.deps import DeskDep, run_blocking
from gateway.departments import DepartmentDesk, DepartmentSpec
from gateway.settings import ID_PATTERN
from gateway.stores.departments import Contact, Department

router = APIRouter(tags=["departments"])

Reader = Annotated[Principal, Depends(Allow("departments:read"))]
Writer = Annotated[Principal, Depends(Allow("departments:write"))]
KeyReader = Annotated[Principal, Depends(Allow("keys:read"))]
KeyWriter = Annotated[Principal, Depends(Allow("keys:write"))]
Code = Annotated[str, Path(pattern=ID_PATTERN, description="The department's code.")]
NO_CONTROL = r"^[^\x00-\x1f\x7f]+$"
Level = Literal["province", "city", "county", "省", "市", "县"]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ContactBody(_Body):
    name: str = Field(min_length=1, max_length=50, pattern=NO_CONTROL)
    phone: str | None = Field(default=None, pattern=r"^\+?[0-9][0-9 -]{4,19}$")
    email: str | None = Field(default=None, max_length=200,
                              pattern=r"^[^@\s\x00-\x1f]+@[^@\s\x00-\x1f]+\.[A-Za-z]{2,}$")

    def as_contact(self) -> Contact:
        return Contact(self.name, self.phone, self.email)


class DepartmentBody(_Body):
    code: str = Field(pattern=ID_PATTERN)
    name: str = Field(min_length=1, max_length=200, pattern=NO_CONTROL)
    region: str | None = Field(default=None, max_length=9, description="GB/T 2260 division code (6 digits).")
    level: Level | None = Field(default=None, description="province/city/county (省/市/县).")
    uscc: str | None = Field(default=None, max_length=18, description="The agency's unified social credit code.")
    contacts: list[ContactBody] = Field(default_factory=list, max_length=20)

    def as_spec(self) -> DepartmentSpec:
        return DepartmentSpec(code=self.code, name=self.name, region=self.region, level=self.level, uscc=self.uscc,
                              contacts=tuple(c.as_contact() for c in self.contacts))


class DepartmentPatch(_Body):
    name: str | None = Field(default=None, min_length=1, max_length=200, pattern=NO_CONTROL)
    region: str | None = Field(default=None, max_length=9)
    level: Level | None = None
    uscc: str | None = Field(default=None, max_length=18)
    contacts: list[ContactBody] | None = Field(default=None, max_length=20)

    @model_validator(mode="after")
    def _name_and_contacts_not_null(self) -> DepartmentPatch:
        for name in ("name", "contacts"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self

    def changes(self) -> dict[str, Any]:
        out = {name: getattr(self, name) for name in self.model_fields_set}
        if self.contacts is not None and "contacts" in out:
            out["contacts"] = [c.as_contact() for c in self.contacts]
        return out


class KeyBody(_Body):
    name: str | None = Field(default=None, pattern=ID_PATTERN, description="Default: the department's code.")


def mask_phone(phone: str | None) -> str | None:
    if phone is None:
        return None
    if len(phone) <= 7:
        return "*" * len(phone)
    return phone[:3] + "*" * (len(phone) - 7) + phone[-4:]


def mask_email(email: str | None) -> str | None:
    if email is None:
        return None
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain}"


def mask_name(name: str) -> str:
    return name[:1] + "*" * max(len(name) - 1, 1)


def contact_dict(c: Contact, *, masked: bool) -> dict[str, Any]:
    if masked:
        return {"name": mask_name(c.name), "phone": mask_phone(c.phone), "email": mask_email(c.email)}
    return {"name": c.name, "phone": c.phone, "email": c.email}


def department_dict(d: Department, connectors: list[str], *, masked: bool) -> dict[str, Any]:
    return {"code": d.code, "name": d.name, "region": d.region, "level": d.level, "uscc": d.uscc,
            "contacts": [contact_dict(c, masked=masked) for c in d.contacts], "from_config": d.from_config,
            "connectors": connectors, "created_at": d.created_at.isoformat(), "updated_at": d.updated_at.isoformat()}


def _list(desk: DepartmentDesk, only: str | None, limit: int, offset: int) -> dict[str, Any]:
    service = desk.service
    if only is not None:
        found = service.departments.get(only)
        items = [found] if found is not None and offset == 0 else []
        total = 0 if found is None else 1
    else:
        items = service.departments.list(limit=limit, offset=offset)
        total = service.departments.count()
    return {"items": [department_dict(d, service.connectors(d.code), masked=True) for d in items], "total": total}


@router.get("/departments", summary="Departments (a department sees only its own); contacts masked")
async def list_departments(desk: DeskDep, who: Reader, limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                           offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0) -> dict[str, Any]:
    return await run_blocking(_list, desk, department_scope(who, None), limit, offset)


@router.post("/departments", status_code=201, summary="Onboard a department")
async def create_department(body: DepartmentBody, desk: DeskDep, who: Writer) -> dict[str, Any]:
    created = await run_blocking(desk.service.create, body.as_spec(), actor=who.actor)
    return department_dict(created, desk.service.connectors(created.code), masked=False)


@router.get("/departments/{code}", summary="A department with its contacts and connectors")
async def show_department(code: Code, desk: DeskDep, who: Reader) -> dict[str, Any]:
    department_scope(who, code)
    found = await run_blocking(desk.service.get, code)
    in_clear = who.role in (Role.ADMIN, Role.DEPARTMENT)  # admins, and the department itself
    return department_dict(found, desk.service.connectors(code), masked=not in_clear)


@router.patch("/departments/{code}", summary="Change a department's name, region, level, USCC or contacts")
async def update_department(code: Code, body: DepartmentPatch, desk: DeskDep, who: Writer) -> dict[str, Any]:
    updated = await run_blocking(desk.service.update, code, body.changes(), actor=who.actor)
    return department_dict(updated, desk.service.connectors(code), masked=False)


@router.delete("/departments/{code}", summary="Remove a department (none of its connectors left); revokes its keys")
async def delete_department(code: Code, desk: DeskDep, who: Writer) -> dict[str, str]:
    await run_blocking(desk.service.delete, code, actor=who.actor)
    return {"deleted": code}


@router.get("/departments/{code}/keys", summary="A department's API keys (fingerprints only)")
async def list_department_keys(code: Code, desk: DeskDep, _who: KeyReader,
                               include_inactive: bool = False) -> dict[str, Any]:
    await run_blocking(desk.service.get, code)
    keys = await run_blocking(desk.service.keys.list, department=code, include_inactive=include_inactive,
                              limit=1000)
    return {"items": [k.as_dict() for k in keys]}


@router.post("/departments/{code}/keys", status_code=201,
             summary="Issue an API key to a department: the key is in this answer only")
async def issue_department_key(code: Code, desk: DeskDep, who: KeyWriter,
                               body: KeyBody | None = None) -> dict[str, Any]:
    name = body.name if body is not None and body.name else code
    issued = await run_blocking(desk.service.issue_key, name=name, role=Role.DEPARTMENT.value, department=code,
                                actor=who.actor)
    return {"key": issued.key, **issued.record.as_dict()}

