"""Connector types and connectors (``/admin/connector-plugins``, ``/admin/connectors``), in the manner
of Kafka Connect's REST API: types with their options' JSON Schema, validation without saving,
create / read / replace / delete, status, pause / resume / restart, connection test and dry run.

Reading is for every staff role; changing for admin and integrator; pause, resume and restart
also for ops. A pause is kept across restarts; a push to a paused connector answers 503
``CONNECTOR_PAUSED`` with ``Retry-After`` (the source keeps its data and retries).
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Annotated, Any, TypeVar, cast

from fastapi import APIRouter, Body, Depends
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from gateway.api.authz import Allow, Principal
from gateway.api.deps import StateDep
from gateway.api.problems import ApiProblem
from gateway.connector_admin import AdminProblem, ConnectorAdmin
from gateway.errors import StoreUnavailable

router = APIRouter(tags=["connectors"])

T = TypeVar("T")
Reader = Annotated[Principal, Depends(Allow("connectors:read"))]
Writer = Annotated[Principal, Depends(Allow("connectors:write"))]
Operator = Annotated[Principal, Depends(Allow("connectors:operate"))]
ConnectorBody = Annotated[dict[str, Any], Body(
    description="The connector's settings, as a `connectors` entry of the config file: id, type, mapping "
                "(or mappings per variant), department, enabled, meta, options.",
    examples=[{"id": "eco-push", "type": "http_push", "mapping": "eco-rest.penalty", "department": "eco"}])]


def admin_of(state: StateDep) -> ConnectorAdmin:
    if state.connector_admin is None:
        raise ApiProblem(503, "REGISTRY_UNAVAILABLE", "连接器注册表不可用", "the connector registry is not available")
    return state.connector_admin


AdminDep = Annotated[ConnectorAdmin, Depends(admin_of)]


def problem(exc: AdminProblem) -> ApiProblem:
    answer = ApiProblem(exc.status, exc.code, exc.message_zh, exc.message_en)
    if exc.errors:
        cast(dict[str, Any], answer.detail)["errors"] = exc.errors
    return answer


async def answer(call: Awaitable[T]) -> T:
    """The service's refusals and store failures as API problems."""
    try:
        return await call
    except AdminProblem as exc:
        raise problem(exc) from exc
    except StoreUnavailable as exc:
        raise ApiProblem(503, "STORE_UNAVAILABLE", "存储暂不可用，请稍后重试", "store unavailable, retry later",
                         headers={"Retry-After": "5"}) from exc


class DryRun(BaseModel):
    model_config = ConfigDict(extra="forbid")

    payload: Any = Field(description="A sample payload, as the source sends it (decoded JSON).")
    meta: dict[str, Any] = Field(default_factory=dict, description="Envelope metadata (topic, file...).")
    variant: str | None = Field(default=None, description="Which of the connector's mappings (default: the one).")
    records_inline: bool | None = Field(
        default=None, description="The payload is one record or a list of records (default: for push connectors).")


@router.get("/connector-plugins", summary="Connector types with their options' JSON Schema")
async def list_plugins(admin: AdminDep, _: Reader) -> list[dict[str, Any]]:
    return admin.plugins()


@router.put("/connector-plugins/{type_name}/config/validate", summary="Validate settings without saving them")
async def validate(type_name: str, body: ConnectorBody, admin: AdminDep, _: Reader) -> dict[str, Any]:
    problems = await answer(admin.validate(body, type_name=type_name))
    return {"type": type_name, "valid": not problems, "error_count": len(problems), "errors": problems}


@router.get("/connectors", summary="Every connector, with its status")
async def list_connectors(admin: AdminDep, _: Reader) -> list[dict[str, Any]]:
    return await answer(admin.connectors())


@router.post("/connectors", status_code=201, summary="Create a connector (applied at once)")
async def create(body: ConnectorBody, admin: AdminDep, who: Writer) -> dict[str, Any]:
    return await answer(admin.create(body, actor=who.actor))


@router.get("/connectors/{connector_id}", summary="A connector: settings (secrets masked), version, status")
async def get_connector(connector_id: str, admin: AdminDep, _: Reader) -> dict[str, Any]:
    return await answer(admin.get(connector_id))


@router.put("/connectors/{connector_id}/config", summary="Create or replace a connector's settings")
async def put_config(connector_id: str, body: ConnectorBody, admin: AdminDep, who: Writer) -> JSONResponse:
    view, created = await answer(admin.put(connector_id, body, actor=who.actor))
    return JSONResponse(status_code=201 if created else 200, content=view)


@router.delete("/connectors/{connector_id}", status_code=204, summary="Delete a connector (stopped at once)")
async def delete(connector_id: str, admin: AdminDep, who: Writer) -> Response:
    await answer(admin.delete(connector_id, actor=who.actor))
    return Response(status_code=204)


@router.get("/connectors/{connector_id}/status",
            summary="State, last record, last error, counts received / accepted / rejected / duplicate")
async def status(connector_id: str, admin: AdminDep, _: Reader) -> dict[str, Any]:
    return await answer(admin.status(connector_id))


@router.put("/connectors/{connector_id}/pause", status_code=202, summary="Pause (kept across restarts)")
async def pause(connector_id: str, admin: AdminDep, who: Operator) -> dict[str, Any]:
    return await answer(admin.set_paused(connector_id, True, actor=who.actor))


@router.put("/connectors/{connector_id}/resume", status_code=202, summary="Resume a paused connector")
async def resume(connector_id: str, admin: AdminDep, who: Operator) -> dict[str, Any]:
    return await answer(admin.set_paused(connector_id, False, actor=who.actor))


@router.post("/connectors/{connector_id}/restart", status_code=202, summary="Stop and rebuild a connector")
async def restart(connector_id: str, admin: AdminDep, who: Operator) -> dict[str, Any]:
    return await answer(admin.restart(connector_id, actor=who.actor))


@router.post("/connectors/{connector_id}/test",
             summary="Connection test (connect and authenticate, where the connector type can)")
async def test(connector_id: str, admin: AdminDep, _: Writer) -> dict[str, Any]:
    return await answer(admin.test(connector_id))


@router.post("/connectors/{connector_id}/dry-run",
             summary="A sample payload through the connector's mapping: standard records or field errors")
async def dry_run(connector_id: str, body: DryRun, admin: AdminDep, _: Writer) -> dict[str, Any]:
    return await answer(admin.dry_run(connector_id, body.payload, meta=body.meta, variant=body.variant,
                                      records_inline=body.records_inline))
