"""Liveness, readiness and metrics."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse

from gateway.api.deps import StateDep
from monitoring.metrics import CONTENT_TYPE

router = APIRouter(tags=["ops"])


@router.get("/healthz", summary="The process is alive")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Stores, the MQTT broker and the targets' circuits",
            description="200 while the stores answer and no MQTT connector has lost its broker; a target whose "
                        "circuit is open makes the status 'degraded' (still ready: the outbox keeps its records). "
                        "503 otherwise, with every check and its reason in the body.")
async def readyz(state: StateDep) -> JSONResponse:
    if state.ops_view is not None:
        body = await asyncio.to_thread(state.ops_view.readiness)
    else:
        checks = {name: {"ok": check()} for name, check in state.readiness.items()}
        ready = all(c["ok"] for c in checks.values())
        body = {"ready": ready, "status": "ok" if ready else "unavailable", "checks": checks}
    return JSONResponse(status_code=200 if body["ready"] else 503, content=body)


@router.get("/metrics", summary="Prometheus metrics")
async def metrics(state: StateDep) -> Response:
    return Response(content=await asyncio.to_thread(state.metrics_exposition), media_type=CONTENT_TYPE)
