"""Liveness, readiness and metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse

from gateway.api.deps import StateDep
from monitoring.metrics import CONTENT_TYPE

router = APIRouter(tags=["ops"])


@router.get("/healthz", summary="The process is alive")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Stores and dependencies answer")
async def readyz(state: StateDep) -> JSONResponse:
    checks = {name: check() for name, check in state.readiness.items()}
    ready = all(checks.values())
    return JSONResponse(status_code=200 if ready else 503, content={"ready": ready, "checks": checks})


@router.get("/metrics", summary="Prometheus metrics")
async def metrics(state: StateDep) -> Response:
    return Response(content=state.metrics_exposition(), media_type=CONTENT_TYPE)
