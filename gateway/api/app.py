"""The FastAPI application. ``create_app`` builds it around an ApiState; nothing at import time."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from gateway.api.authz import SettingsPrincipals
from gateway.api.routes import (
    audit,
    connectors,
    dashboard,
    department_view,
    departments,
    health,
    ingest,
    keys,
    mappings,
    ops,
    quality,
)
from gateway.api.state import ApiState

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


async def _validation_problem(request: Request, exc: Exception) -> JSONResponse:
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    return JSONResponse(status_code=422, content={"detail": {
        "code": "REQUEST_INVALID", "message_zh": "请求参数不合法", "message_en": "invalid request",
        "errors": [{"loc": list(e.get("loc", ())), "msg": e.get("msg")} for e in errors],
    }})


def create_app(state: ApiState, *, lifespan: Lifespan | None = None) -> FastAPI:
    app = FastAPI(title="Supervision Gateway", version="0.1.0", lifespan=lifespan,
                  description="互联网+监管 integration gateway: push ingest, health and metrics.")
    if state.principals is None:
        state = dataclasses.replace(state, principals=SettingsPrincipals(state.api, state.departments))
    app.state.sgw = state
    app.add_exception_handler(RequestValidationError, _validation_problem)
    app.include_router(ingest.router)
    app.include_router(health.router)
    app.include_router(ops.router, prefix="/admin")
    app.include_router(quality.router, prefix="/admin")
    app.include_router(dashboard.admin_router, prefix="/admin")
    app.include_router(dashboard.router)
    app.include_router(departments.router, prefix="/admin")
    app.include_router(keys.router, prefix="/admin")
    app.include_router(audit.router, prefix="/admin")
    app.include_router(department_view.router)
    app.include_router(connectors.router, prefix="/admin")
    app.include_router(mappings.router, prefix="/admin")
    return app

