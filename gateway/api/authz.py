"""Who is calling, and what each role may do.

Every route declares the permission it needs (``Allow("connectors:write")``); the table
``PERMISSIONS`` says which roles hold it. A caller presents one bearer token (``Authorization:
Bearer``, ``X-API-Key`` or the legacy ``X-Admin-Token``); a ``PrincipalResolver`` turns it into a
``Principal``: a name, a role and, for the department role, the department it may act for.
A department principal sees and changes only its own data: routes scope queries with
``department_scope``.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Protocol

from fastapi import Depends, Header, Request

from gateway.api.problems import ApiProblem
from gateway.auth import key_matches
from gateway.settings import ApiSettings, DepartmentSettings


class Role(StrEnum):
    ADMIN = "admin"
    INTEGRATOR = "integrator"
    OPS = "ops"
    DEPARTMENT = "department"
    VIEWER = "viewer"


@dataclass(frozen=True, slots=True)
class Principal:
    name: str
    role: Role
    department: str | None = None  # set for (and only for) the department role

    @property
    def actor(self) -> str:
        """How the audit log names this caller."""
        return f"{self.role.value}:{self.name}"


_ALL = frozenset(Role)
_STAFF_READ = frozenset({Role.ADMIN, Role.INTEGRATOR, Role.OPS, Role.VIEWER})

PERMISSIONS: dict[str, frozenset[Role]] = {
    # connector types, connectors and mappings (the integrators' registry)
    "connectors:read": _STAFF_READ,
    "connectors:write": frozenset({Role.ADMIN, Role.INTEGRATOR}),
    "connectors:operate": frozenset({Role.ADMIN, Role.INTEGRATOR, Role.OPS}),  # pause, resume, restart
    "mappings:read": _STAFF_READ,
    "mappings:write": frozenset({Role.ADMIN, Role.INTEGRATOR}),
    "routing:write": frozenset({Role.ADMIN, Role.INTEGRATOR}),
    # departments and their keys
    "departments:read": _ALL,  # a department reads only its own entry
    "departments:write": frozenset({Role.ADMIN}),
    "keys:write": frozenset({Role.ADMIN}),
    # the data departments own
    "ingest": frozenset({Role.DEPARTMENT}),
    "rejections:read": _ALL,  # a department reads only its own
    "rejections:resubmit": frozenset({Role.ADMIN, Role.DEPARTMENT}),
    "records:read": _ALL,  # journeys; a department reads only its own records
    "quality:read": _ALL,  # a department reads only its own figures
    # operations
    "deadletters:read": frozenset({Role.ADMIN, Role.OPS, Role.VIEWER}),
    "deadletters:write": frozenset({Role.ADMIN, Role.OPS}),  # redrive, discard
    "ops:read": _STAFF_READ,  # dashboard data, status
    "audit:read": frozenset({Role.ADMIN}),
}


class PrincipalResolver(Protocol):
    def resolve(self, token: str) -> Principal | None: ...


class SettingsPrincipals:
    """Principals from the configuration file: the admin token, named role tokens and the
    departments' key hashes. The database-backed resolver (keys issued through the API) is
    chained after it with ``ChainedPrincipals``."""

    def __init__(self, api: ApiSettings, departments: Sequence[DepartmentSettings]) -> None:
        self._admin = api.admin_token.get_secret_value() if api.admin_token else None
        self._tokens = api.tokens
        self._departments = tuple(departments)

    def resolve(self, token: str) -> Principal | None:
        if self._admin is not None and hmac.compare_digest(token.encode(), self._admin.encode()):
            return Principal("admin", Role.ADMIN)
        for configured in self._tokens:
            if key_matches(token, (configured.token_hash,)):
                return Principal(configured.name, Role(configured.role), configured.department)
        for department in self._departments:
            if key_matches(token, department.api_key_hashes):
                return Principal(department.code, Role.DEPARTMENT, department.code)
        return None


class ChainedPrincipals:
    def __init__(self, resolvers: Iterable[PrincipalResolver]) -> None:
        self._resolvers = tuple(resolvers)

    def resolve(self, token: str) -> Principal | None:
        for resolver in self._resolvers:
            if (found := resolver.resolve(token)) is not None:
                return found
        return None


def presented_token(authorization: str | None, x_api_key: str | None, x_admin_token: str | None) -> str | None:
    if x_api_key:
        return x_api_key.strip()
    if x_admin_token:
        return x_admin_token.strip()
    if authorization and authorization.lower().startswith("bearer "):
        return authorization[7:].strip() or None
    return None


def current_principal(
    request: Request,
    authorization: Annotated[str | None, Header()] = None,
    x_api_key: Annotated[str | None, Header(alias="X-API-Key")] = None,
    x_admin_token: Annotated[str | None, Header(alias="X-Admin-Token")] = None,
) -> Principal:
    token = presented_token(authorization, x_api_key, x_admin_token)
    if not token:
        raise ApiProblem(401, "AUTH_MISSING", "缺少访问令牌（Authorization: Bearer 或 X-API-Key）",
                         "missing token (Authorization: Bearer or X-API-Key)", headers={"WWW-Authenticate": "Bearer"})
    resolver: PrincipalResolver = request.app.state.sgw.principals
    principal = resolver.resolve(token)
    if principal is None:
        raise ApiProblem(401, "AUTH_INVALID", "访问令牌无效", "invalid token", headers={"WWW-Authenticate": "Bearer"})
    return principal


PrincipalDep = Annotated[Principal, Depends(current_principal)]


def Allow(permission: str) -> Callable[[Principal], Principal]:
    """A dependency that lets through only principals whose role holds ``permission``."""
    roles = PERMISSIONS[permission]  # KeyError at import of the route module: a typo fails fast

    def check(principal: PrincipalDep) -> Principal:
        if principal.role not in roles:
            raise ApiProblem(403, "FORBIDDEN", f"当前角色（{principal.role.value}）无权执行此操作",
                             f"role {principal.role.value!r} lacks permission {permission!r}")
        return principal

    check.__name__ = f"allow_{permission.replace(':', '_')}"
    return check


def department_scope(principal: Principal, requested: str | None) -> str | None:
    """The department a query may cover: a department principal only its own (asking for another
    is 403); other roles what they asked for (None: all)."""
    if principal.role is not Role.DEPARTMENT:
        return requested
    if requested is not None and requested != principal.department:
        raise ApiProblem(403, "FORBIDDEN_DEPARTMENT", "只能访问本部门的数据", "a department sees only its own data")
    return principal.department
