"""The built-in ops dashboard: a static page (``gateway/dashboard/``, package data, no build step)
and the JSON it refreshes from, ``GET /admin/overview``.

The page itself holds no data and needs no token to load; it asks for one, keeps it in
sessionStorage and sends it as a bearer token to ``/admin/overview`` and to the dead-letter
routes (redrive needs the ops or admin role).
"""

from __future__ import annotations

import asyncio
from importlib import resources
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response
from fastapi.responses import RedirectResponse

from gateway.api.authz import Allow, Principal
from gateway.api.problems import ApiProblem
from gateway.api.routes.quality import OpsViewDep
from gateway.errors import StoreUnavailable

router = APIRouter(tags=["dashboard"])
admin_router = APIRouter(tags=["dashboard"])
OpsReader = Annotated[Principal, Depends(Allow("ops:read"))]

ASSETS = {"app.js": "text/javascript; charset=utf-8", "app.css": "text/css; charset=utf-8"}
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}


def _asset(name: str) -> bytes:
    return resources.files("gateway.dashboard").joinpath(name).read_bytes()


@router.get("/dashboard", include_in_schema=False)
async def dashboard_redirect() -> RedirectResponse:
    return RedirectResponse("dashboard/")  # relative: right under a reverse proxy's path prefix too


@router.get("/dashboard/", summary="The ops dashboard page (Chinese UI)", response_class=Response)
async def dashboard_page() -> Response:
    return Response(_asset("index.html"), media_type="text/html; charset=utf-8", headers=PAGE_HEADERS)


@router.get("/dashboard/{name}", include_in_schema=False)
async def dashboard_asset(name: str) -> Response:
    media_type = ASSETS.get(name)
    if media_type is None:
        raise ApiProblem(404, "NOT_FOUND", "资源不存在", f"no dashboard asset {name!r}")
    return Response(_asset(name), media_type=media_type, headers=PAGE_HEADERS)


@admin_router.get("/overview", summary="The dashboard's figures: throughput, failures, backlogs, circuits, "
                                       "rejections and data quality per department, dead letters")
async def overview(view: OpsViewDep, _who: OpsReader) -> dict[str, Any]:
    try:
        found: dict[str, Any] = await asyncio.to_thread(view.overview)
    except StoreUnavailable as exc:
        raise ApiProblem(503, "STORE_UNAVAILABLE", "存储暂不可用，请稍后重试", "store unavailable, retry later",
                         headers={"Retry-After": "5"}) from exc
    return found
