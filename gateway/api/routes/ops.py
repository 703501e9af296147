"""Admin routes for ops: dead letters (list, inspect, redrive one or many, discard), rejections, journeys.

Every route declares its permission (gateway/api/authz.py): reading dead letters is for admin,
ops and viewer, changing them for admin and ops; rejections and journeys are readable by every
role, a department seeing only its own (the records it provided).
"""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from gateway.api.authz import Allow, Principal, Role, department_scope
from gateway.api.deps import StateDep
from gateway.api.problems import ApiProblem
from gateway.dead_letters import DeadLetterOps, dead_letter_dict, journey_dict, rejection_dict
from gateway.errors import ConfigError, StoreUnavailable
from gateway.stores.outbox import DeadLetterFilter
from gateway.stores.rejections import RejectionStatus

router = APIRouter(tags=["ops"])


def ops_of(state: StateDep) -> DeadLetterOps:
    ops = state.ops
    if ops is None:
        raise ApiProblem(503, "OPS_UNAVAILABLE", "运维接口不可用", "ops operations are not available")
    return ops


OpsDep = Annotated[DeadLetterOps, Depends(ops_of)]
DeadLetterReader = Annotated[Principal, Depends(Allow("deadletters:read"))]
DeadLetterWriter = Annotated[Principal, Depends(Allow("deadletters:write"))]
RejectionReader = Annotated[Principal, Depends(Allow("rejections:read"))]
RecordReader = Annotated[Principal, Depends(Allow("records:read"))]  # a department: the records it provided


class FilterQuery(BaseModel):
    adapter: str | None = None
    kind: str | None = None
    department: str | None = None
    record_id: str | None = None
    error_contains: str | None = None

    def as_filter(self) -> DeadLetterFilter:
        return DeadLetterFilter(**self.model_dump())


class RedriveBody(BaseModel):
    ids: list[str] = Field(default_factory=list, description="Dead letters to redrive; or give a filter.")
    filter: FilterQuery | None = None


class DiscardBody(BaseModel):
    reason: str = Field(min_length=1)


async def _call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return await asyncio.to_thread(fn, *args, **kwargs)
    except StoreUnavailable as exc:
        raise ApiProblem(503, "STORE_UNAVAILABLE", "存储暂不可用，请稍后重试", "store unavailable, retry later",
                         headers={"Retry-After": "5"}) from exc
    except ConfigError as exc:
        raise ApiProblem(422, "REQUEST_INVALID", "请求不合法", str(exc)) from exc


@router.get("/dead-letters", summary="List dead letters (filter by adapter, kind, department, error)")
async def list_dead_letters(ops: OpsDep, _who: DeadLetterReader, where: Annotated[FilterQuery, Query()],
                            limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> dict[str, Any]:
    items = await _call(ops.find, where.as_filter(), limit)
    return {"items": [dead_letter_dict(i) for i in items]}


@router.get("/dead-letters/{item_id}", summary="A dead letter: its record, error, attempts and journey")
async def show_dead_letter(item_id: str, ops: OpsDep, _who: DeadLetterReader) -> dict[str, Any]:
    view = await _call(ops.show, item_id)
    if view is None:
        raise ApiProblem(404, "NOT_FOUND", "死信不存在", f"no dead letter {item_id!r}")
    result: dict[str, Any] = view.as_dict()
    return result


@router.post("/dead-letters/redrive", summary="Redrive dead letters by id, or all matching a filter")
async def redrive(body: RedriveBody, ops: OpsDep, who: DeadLetterWriter) -> dict[str, int]:
    if body.ids:
        count = await _call(ops.redrive, body.ids, actor=who.actor)
    else:
        count = await _call(ops.redrive_matching, (body.filter or FilterQuery()).as_filter(), actor=who.actor)
    return {"redriven": count}


@router.post("/dead-letters/{item_id}/discard", summary="Discard a dead letter, with a reason")
async def discard(item_id: str, body: DiscardBody, ops: OpsDep, who: DeadLetterWriter) -> dict[str, int]:
    count = await _call(ops.discard, [item_id], reason=body.reason, actor=who.actor)
    if count == 0:
        raise ApiProblem(404, "NOT_FOUND", "死信不存在", f"no dead letter {item_id!r}")
    return {"discarded": count}


@router.get("/rejections", summary="Rejections by department, status and due date")
async def rejections(ops: OpsDep, who: RejectionReader, department: str | None = None,
                     status: RejectionStatus | None = None, due_before: date | None = None,
                     limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> dict[str, Any]:
    found = await _call(ops.rejections, department_scope(who, department), status, due_before, limit)
    return {"items": [rejection_dict(r) for r in found]}


@router.get("/records/{record_id}/journey", summary="Every step, attempt and receipt of one record")
async def journey(record_id: str, ops: OpsDep, who: RecordReader, state: StateDep) -> dict[str, Any]:
    steps = await _call(ops.journey, record_id)
    if who.role is Role.DEPARTMENT and steps:
        owner = await _call(state.desk.submissions.owner_of, record_id) if state.desk is not None else None
        if owner is None or owner != who.department:
            steps = []  # another department's record: as if unknown
    if not steps:
        raise ApiProblem(404, "NOT_FOUND", "记录不存在", f"no record {record_id!r}")
    return {"record_id": record_id, "steps": [journey_dict(s) for s in steps]}
