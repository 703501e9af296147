"""Mappings (``/admin/mappings``): every version kept, the highest current; a new version is accepted
only when it compiles and its golden examples hold (422 with ``file:line: fields.X: message``
problems otherwise), and applies to the connectors using it without a restart.
Routing (``/admin/routing``): which adapters each record kind goes to, swapped at once."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from gateway.api.authz import Allow, Principal
from gateway.api.routes.connectors import AdminDep, answer

router = APIRouter(tags=["mappings"])

Reader = Annotated[Principal, Depends(Allow("mappings:read"))]
Writer = Annotated[Principal, Depends(Allow("mappings:write"))]
RoutingReader = Annotated[Principal, Depends(Allow("connectors:read"))]
RoutingWriter = Annotated[Principal, Depends(Allow("routing:write"))]


class MappingPut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    spec: str = Field(description="The mapping's YAML text (name, version, kind, fields, examples...).")


class RoutingPut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    routes: list[dict[str, Any]] = Field(description="[{kinds: [kind or '*'], adapters: [adapter id]}]")


@router.get("/mappings", summary="Every mapping with its current version")
async def list_mappings(admin: AdminDep, _: Reader) -> list[dict[str, Any]]:
    return await answer(admin.mappings())


@router.get("/mappings/{name}", summary="A mapping: its current version's text and every version")
async def get_mapping(name: str, admin: AdminDep, _: Reader) -> dict[str, Any]:
    return await answer(admin.mapping(name))


@router.put("/mappings/{name}", summary="A new version (compiled and golden examples checked first)")
async def put_mapping(name: str, body: MappingPut, admin: AdminDep, who: Writer) -> JSONResponse:
    view, created = await answer(admin.put_mapping(name, body.spec, actor=who.actor))
    return JSONResponse(status_code=201 if created else 200, content=view)


@router.get("/mappings/{name}/versions/{version}", summary="One version of a mapping")
async def get_version(name: str, version: Annotated[int, Path(ge=1, le=2**31 - 1)], admin: AdminDep,
                      _: Reader) -> dict[str, Any]:
    return await answer(admin.mapping_version(name, version))


@router.get("/routing", summary="Which adapters each record kind goes to")
async def get_routing(admin: AdminDep, _: RoutingReader) -> dict[str, Any]:
    return await answer(admin.routing())


@router.put("/routing", summary="Replace the routing (applied at once)")
async def put_routing(body: RoutingPut, admin: AdminDep, who: RoutingWriter) -> dict[str, Any]:
    return await answer(admin.put_routing(body.routes, actor=who.actor))
