"""Request dependencies as Annotated aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from gateway.api.problems import ApiProblem
from gateway.api.state import ApiState
from gateway.auth import key_matches
from gateway.settings import DepartmentSettings


def get_state(request: Request) -> ApiState:
    state: ApiState = request.app.state.sgw
    return state


StateDep = Annotated[ApiState, Depends(get_state)]


def current_department(
    state: StateDep,
    x_api_key: Annotated[str | None, Header(alias="X-API-Key")] = None,
    authorization: Annotated[str | None, Header()] = None,
) -> DepartmentSettings:
    key = x_api_key
    if key is None and authorization and authorization.lower().startswith("bearer "):
        key = authorization[7:].strip()
    if not key:
        raise ApiProblem(401, "AUTH_MISSING", "缺少 API 密钥（X-API-Key）", "missing API key (X-API-Key)",
                         headers={"WWW-Authenticate": "ApiKey"})
    for department in state.departments:
        if key_matches(key, department.api_key_hashes):
            return department
    raise ApiProblem(401, "AUTH_INVALID", "API 密钥无效", "invalid API key", headers={"WWW-Authenticate": "ApiKey"})


DepartmentDep = Annotated[DepartmentSettings, Depends(current_department)]
