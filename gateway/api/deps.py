"""Request dependencies as Annotated aliases."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Header, Request

from gateway.api.authz import Role, presented_token
from gateway.api.problems import ApiProblem
from gateway.api.state import ApiState
from gateway.departments import DepartmentDesk, DepartmentProblem
from gateway.errors import StoreUnavailable

T = TypeVar("T")


def get_state(request: Request) -> ApiState:
    state: ApiState = request.app.state.sgw
    return state


StateDep = Annotated[ApiState, Depends(get_state)]


def desk_of(state: StateDep) -> DepartmentDesk:
    if state.desk is None:
        raise ApiProblem(503, "DEPARTMENTS_UNAVAILABLE", "部门与审计接口不可用",
                         "departments and audit are not available")
    return state.desk


DeskDep = Annotated[DepartmentDesk, Depends(desk_of)]


@dataclass(frozen=True, slots=True)
class PushingDepartment:
    """The department a push is ingested for, with what its envelopes carry."""

    code: str
    provider_uscc: str | None = None
    admin_division_code: str | None = None


def current_department(
    state: StateDep,
    x_api_key: Annotated[str | None, Header(alias="X-API-Key")] = None,
    authorization: Annotated[str | None, Header()] = None,
) -> PushingDepartment:
    """The department whose key (from the config file or issued through the API) was presented:
    401 without a valid key, 403 for a valid token of another role."""
    key = presented_token(authorization, x_api_key, None)
    if not key:
        raise ApiProblem(401, "AUTH_MISSING", "缺少 API 密钥（X-API-Key）", "missing API key (X-API-Key)",
                         headers={"WWW-Authenticate": "ApiKey"})
    principal = state.principals.resolve(key) if state.principals is not None else None
    if principal is None:
        raise ApiProblem(401, "AUTH_INVALID", "API 密钥无效", "invalid API key", headers={"WWW-Authenticate": "ApiKey"})
    if principal.role is not Role.DEPARTMENT or principal.department is None:
        raise ApiProblem(403, "FORBIDDEN", f"当前角色（{principal.role.value}）不能推送数据",
                         f"role {principal.role.value!r} may not push data")
    return department_identity(state, principal.department)


def department_identity(state: ApiState, code: str) -> PushingDepartment:
    for configured in state.departments:
        if configured.code == code:
            return PushingDepartment(code, configured.provider_uscc, configured.admin_division_code)
    stored = state.desk.service.departments.get(code) if state.desk is not None else None
    if stored is None:
        return PushingDepartment(code)
    return PushingDepartment(code, stored.uscc, stored.region)


DepartmentDep = Annotated[PushingDepartment, Depends(current_department)]


async def run_blocking(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Call a blocking store or service function in a worker thread, its errors as problems."""
    try:
        return await asyncio.to_thread(fn, *args, **kwargs)
    except DepartmentProblem as exc:
        raise problem_of(exc) from exc
    except StoreUnavailable as exc:
        raise ApiProblem(503, "STORE_UNAVAILABLE", "存储暂不可用，请稍后重试", "store unavailable, retry later",
                         headers={"Retry-After": "5"}) from exc


def problem_of(exc: DepartmentProblem) -> ApiProblem:
    problem = ApiProblem(exc.status, exc.code, exc.message_zh, exc.message_en)
    detail: Any = problem.detail
    if exc.fields and isinstance(detail, dict):
        detail["errors"] = exc.fields
    return problem
