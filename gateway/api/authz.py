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
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Protocol

from fastapi import Depends, Header, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from gateway.api.problems import ApiProblem
from gateway.auth import hash_api_key, key_matches
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
    "keys:read": frozenset({Role.ADMIN}),
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


class StoredKeys(Protocol):
    def find_active(self, token: str) -> StoredKey | None: ...


class StoredKey(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def role(self) -> str: ...
    @property
    def department(self) -> str | None: ...


class StoredPrincipals:
    """Principals from the keys issued through the API or the CLI (``gateway.stores.api_keys``).

    Answers are cached for ``ttl_s`` (a busy ingest client does not cost a query per request); a
    key revoked on another instance stops working within that time, and ``forget()`` (called on
    every revocation and rotation here) drops the cache at once.
    """

    def __init__(self, keys: StoredKeys, *, ttl_s: float = 2.0, max_entries: int = 4096,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._keys = keys
        self._ttl_s = ttl_s
        self._max_entries = max_entries
        self._clock = clock
        self._cache: dict[str, tuple[float, Principal | None]] = {}
        self._lock = threading.Lock()

    def resolve(self, token: str) -> Principal | None:
        digest = hash_api_key(token)  # the cache holds digests, never tokens
        now = self._clock()
        with self._lock:
            cached = self._cache.get(digest)
        if cached is not None and cached[0] > now:
            return cached[1]
        principal = self._lookup(token)
        with self._lock:
            if len(self._cache) >= self._max_entries:
                self._cache.clear()
            self._cache[digest] = (now + self._ttl_s, principal)
        return principal

    def _lookup(self, token: str) -> Principal | None:
        found = self._keys.find_active(token)
        if found is None:
            return None
        role = Role(found.role)
        return Principal(found.name, role, found.department if role is Role.DEPARTMENT else None)

    def forget(self) -> None:
        with self._lock:
            self._cache.clear()


def presented_token(authorization: str | None, x_api_key: str | None, x_admin_token: str | None) -> str | None:
    if x_api_key:
        return x_api_key.strip()
    if x_admin_token:
        return x_admin_token.strip()
    if authorization and authorization.lower().startswith("bearer "):
        return authorization[7:].strip() or None
    return None


# Declared as security schemes (not plain headers) so that /docs offers "Authorize"; neither
# answers by itself (auto_error=False): a missing or bad token is our 401 with its code.
_bearer = HTTPBearer(auto_error=False, description="A role token or a department key.")
_api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="A department key or a role token.")


def current_principal(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)] = None,
    x_api_key: Annotated[str | None, Depends(_api_key)] = None,
    x_admin_token: Annotated[str | None, Header(alias="X-Admin-Token", include_in_schema=False)] = None,
) -> Principal:
    authorization = f"Bearer {bearer.credentials}" if bearer is not None else None
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
