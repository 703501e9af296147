"""Onboarding departments and issuing their keys, with every change in the audit log.

Shared by the admin API and the CLI. Calls are blocking (database): the API runs them in a
worker thread. Errors carry a stable English code and messages in Chinese and English; the API
turns them into problems (404, 409, 422).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine

from gateway.audit import AuditTrail, NoAudit
from gateway.errors import GatewayError
from gateway.stores.api_keys import ApiKey, IssuedKey, KeyStore
from gateway.stores.audit import SqlAuditLog
from gateway.stores.departments import Contact, Department, DepartmentExists, DepartmentStore
from gateway.stores.rejections import RejectionsLedger
from gateway.stores.submissions import Submissions
from mapping.identifiers import check_identifier

LEVELS = {"province": "province", "city": "city", "county": "county", "省": "province", "市": "city",
          "县": "county"}
STAFF_ROLES = ("admin", "integrator", "ops", "viewer")


class DepartmentProblem(GatewayError):
    status = 400

    def __init__(self, code: str, message_zh: str, message_en: str,
                 fields: Sequence[Mapping[str, str]] = ()) -> None:
        super().__init__(message_en)
        self.code = code
        self.message_zh = message_zh
        self.message_en = message_en
        self.fields = list(fields)


class NotFound(DepartmentProblem):
    status = 404


class Conflict(DepartmentProblem):
    status = 409


class Invalid(DepartmentProblem):
    status = 422


@dataclass(frozen=True, slots=True)
class DepartmentSpec:
    code: str
    name: str
    region: str | None = None
    level: str | None = None
    uscc: str | None = None
    contacts: tuple[Contact, ...] = ()


def field_errors(values: Mapping[str, Any]) -> list[dict[str, str]]:
    """The identifier findings of ``uscc`` and ``region`` (errors only: warnings do not block)."""
    out: list[dict[str, str]] = []
    for name, id_type in (("uscc", "uscc"), ("region", "admin_division")):
        value = values.get(name)
        if value is None:
            continue
        for finding in check_identifier(id_type, value):
            if finding.severity == "error":
                out.append({"field": name, "code": finding.code, "message_zh": finding.detail_zh,
                            "message_en": finding.detail_en})
    return out


def _checked(values: dict[str, Any]) -> dict[str, Any]:
    if values.get("level") is not None:
        level = LEVELS.get(values["level"])
        if level is None:
            raise Invalid("DEPARTMENT_INVALID", "级别应为 省/市/县（province/city/county）",
                          "level must be province, city or county",
                          [{"field": "level", "code": "LEVEL", "message_zh": "级别无效", "message_en": "bad level"}])
        values["level"] = level
    if errors := field_errors(values):
        raise Invalid("DEPARTMENT_INVALID", "部门信息不合法", "invalid department", errors)
    return values


class DepartmentService:
    def __init__(self, departments: DepartmentStore, keys: KeyStore, *, audit: AuditTrail | None = None,
                 connectors_of: Callable[[], Mapping[str, str | None]] = dict,
                 on_keys_changed: Callable[[], None] | None = None) -> None:
        self.departments = departments
        self.keys = keys
        self._audit = audit or NoAudit()
        self._connectors_of = connectors_of
        self._on_keys_changed = on_keys_changed

    # -- departments ----------------------------------------------------------------------------

    def get(self, code: str) -> Department:
        found = self.departments.get(code)
        if found is None:
            raise NotFound("DEPARTMENT_UNKNOWN", f"部门 {code} 不存在", f"no department {code!r}")
        return found

    def connectors(self, code: str) -> list[str]:
        """The connectors assigned to the department (the connector settings' ``department``)."""
        return sorted(cid for cid, owner in self._connectors_of().items() if owner == code)

    def create(self, spec: DepartmentSpec, *, actor: str) -> Department:
        values = _checked({"region": spec.region, "level": spec.level, "uscc": spec.uscc})
        department = Department(code=spec.code, name=spec.name, contacts=spec.contacts, **values)
        try:
            created = self.departments.create(department)
        except DepartmentExists as exc:
            raise Conflict("DEPARTMENT_EXISTS", f"部门 {spec.code} 已存在", f"department {spec.code!r} exists") from exc
        self._audit.record(actor, "department.create", f"department:{spec.code}", after=created.audit_view())
        return created

    def update(self, code: str, changes: Mapping[str, Any], *, actor: str) -> Department:
        values = _checked(dict(changes))
        if "contacts" in values:
            values["contacts"] = tuple(values["contacts"])
        changed = self.departments.update(code, values)
        if changed is None:
            raise NotFound("DEPARTMENT_UNKNOWN", f"部门 {code} 不存在", f"no department {code!r}")
        before, after = changed
        self._audit.record(actor, "department.update", f"department:{code}",
                           before=before.audit_view(), after=after.audit_view())
        return after

    def delete(self, code: str, *, actor: str) -> None:
        department = self.get(code)
        if department.from_config:
            raise Conflict("DEPARTMENT_FROM_CONFIG", "该部门来自配置文件，请在配置文件中删除",
                           "this department comes from the config file: remove it there")
        if assigned := self.connectors(code):
            raise Conflict("DEPARTMENT_IN_USE", f"该部门仍有连接器：{', '.join(assigned)}",
                           f"connectors are still assigned to it: {', '.join(assigned)}")
        self.departments.delete(code)
        revoked = self.keys.revoke_department(code)
        self._keys_changed()
        self._audit.record(actor, "department.delete", f"department:{code}",
                           before=department.audit_view(), after={"keys_revoked": revoked})

    # -- keys -----------------------------------------------------------------------------------

    def issue_key(self, *, name: str, role: str, department: str | None, actor: str) -> IssuedKey:
        if role == "department":
            if department is None:
                raise Invalid("KEY_INVALID", "部门密钥须指定部门", "a department key names its department")
            self.get(department)
        elif role in STAFF_ROLES:
            if department is not None:
                raise Invalid("KEY_INVALID", "只有部门密钥可以指定部门", "only a department key names a department")
        else:
            raise Invalid("KEY_INVALID", f"未知角色 {role}", f"unknown role {role!r}")
        issued = self.keys.issue(name=name, role=role, department=department, actor=actor)
        self._audit.record(actor, "key.issue", f"key:{issued.record.id}", after=issued.record.as_dict())
        return issued

    def key(self, key_id: int) -> ApiKey:
        found = self.keys.get(key_id)
        if found is None:
            raise NotFound("KEY_UNKNOWN", "密钥不存在", f"no key {key_id}")
        return found

    def rotate_key(self, key_id: int, *, grace_s: float, actor: str) -> IssuedKey:
        if self.key(key_id).revoked_at is not None:
            raise Conflict("KEY_REVOKED", "密钥已吊销，不能轮换", "a revoked key cannot be rotated")
        rotated = self.keys.rotate(key_id, grace_s=grace_s, actor=actor)
        if rotated is None:
            raise NotFound("KEY_UNKNOWN", "密钥不存在", f"no key {key_id}")
        issued, before, after = rotated
        self._keys_changed()
        self._audit.record(actor, "key.rotate", f"key:{key_id}", before=before.as_dict(),
                           after={**after.as_dict(), "new_key": issued.record.as_dict()})
        return issued

    def revoke_key(self, key_id: int, *, actor: str) -> ApiKey:
        changed = self.keys.revoke(key_id)
        if changed is None:
            raise NotFound("KEY_UNKNOWN", "密钥不存在", f"no key {key_id}")
        before, after = changed
        self._keys_changed()
        self._audit.record(actor, "key.revoke", f"key:{key_id}", before=before.as_dict(), after=after.as_dict())
        return after

    def _keys_changed(self) -> None:
        if self._on_keys_changed is not None:
            self._on_keys_changed()



@dataclass(frozen=True, slots=True)
class DepartmentDesk:
    """What the department and audit routes need: the service, the department's own view
    (submissions, rejections) and the audit log."""

    service: DepartmentService
    submissions: Submissions
    rejections: RejectionsLedger
    audit_log: SqlAuditLog


def open_desk(engine: Engine, rejections: RejectionsLedger, audit_log: SqlAuditLog, *,
              connectors_of: Callable[[], Mapping[str, str | None]] = dict,
              on_keys_changed: Callable[[], None] | None = None) -> DepartmentDesk:
    service = DepartmentService(DepartmentStore(engine), KeyStore(engine), audit=audit_log,
                                connectors_of=connectors_of, on_keys_changed=on_keys_changed)
    return DepartmentDesk(service, Submissions(engine), rejections, audit_log)
