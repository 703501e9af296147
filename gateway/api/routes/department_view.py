"""A department's own view: its submissions, its rejections with due dates, and resubmitting a
corrected record. A department acts only for its own code (403 otherwise); staff may look at any.

A resubmission goes through the same connector and mapping as the rejected record; when the
corrected record is accepted, the rejection of its business key is resolved in the same write.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from gateway.api.authz import Allow, Principal, department_scope
from gateway.api.deps import DeskDep, StateDep, department_identity, run_blocking
from gateway.api.problems import ApiProblem
from gateway.api.state import ApiState
from gateway.departments import DepartmentDesk
from gateway.envelope import Envelope
from gateway.errors import ConfigError, StoreUnavailable
from gateway.publisher import PublishResult
from gateway.settings import ID_PATTERN
from gateway.stores.rejections import SHANGHAI, Rejection, RejectionStatus

router = APIRouter(tags=["department view"])

Code = Annotated[str, Path(pattern=ID_PATTERN, description="The department's code.")]


# The department check is a dependency, so that it answers 403 before the body is validated.
def _records_for(code: Code, who: Annotated[Principal, Depends(Allow("records:read"))]) -> Principal:
    department_scope(who, code)
    return who


def _rejections_for(code: Code, who: Annotated[Principal, Depends(Allow("rejections:read"))]) -> Principal:
    department_scope(who, code)
    return who


def _resubmitter_for(code: Code, who: Annotated[Principal, Depends(Allow("rejections:resubmit"))]) -> Principal:
    department_scope(who, code)
    return who


RecordReader = Annotated[Principal, Depends(_records_for)]
RejectionReader = Annotated[Principal, Depends(_rejections_for)]
Resubmitter = Annotated[Principal, Depends(_resubmitter_for)]
RejectionId = Annotated[int, Path(ge=1, le=2**62)]
Limit = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[int, Query(ge=0, le=1_000_000)]


class ResubmitBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    payload: dict[str, Any] = Field(description="The corrected source record, as the connector receives it.")
    variant: str | None = Field(default=None, max_length=64, description=(
        "The connector's mapping the payload is written for (a batch-file connector: csv, xlsx or xml). "
        "Needed only when the rejection names none (a target's rejection) and the connector has several."))


def today_shanghai() -> date:
    return datetime.now(SHANGHAI).date()


def rejection_view(r: Rejection, today: date) -> dict[str, Any]:
    return {"id": r.id, "record_id": r.record_id, "kind": r.kind, "connector": r.connector, "target": r.target,
            "source_record_id": r.source_record_id, "status": r.status, "rejected_at": r.rejected_at.isoformat(),
            "due_on": r.due_on.isoformat(), "overdue": r.status == "open" and r.due_on < today,
            "resolved_at": r.resolved_at.isoformat() if r.resolved_at else None,
            "resolved_by_record_id": r.resolved_by_record_id, "location": r.location, "errors": r.errors}


async def _known(desk: DepartmentDesk, code: str) -> str:
    await run_blocking(desk.service.get, code)  # 404 for an unknown department
    return code


@router.get("/departments/{code}/submissions", summary="The department's recent records and their outcomes")
async def submissions(code: Code, desk: DeskDep, who: RecordReader, since: datetime | None = None,
                      limit: Limit = 50, offset: Offset = 0) -> dict[str, Any]:
    await _known(desk, code)
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    items = await run_blocking(desk.submissions.recent, code, since=since, limit=limit, offset=offset)
    return {"items": [s.as_dict() for s in items], "limit": limit, "offset": offset}


@router.get("/departments/{code}/rejections", summary="The department's rejections with due dates (overdue flagged)")
async def rejections(code: Code, desk: DeskDep, who: RejectionReader, status: RejectionStatus | None = None,
                     overdue: Annotated[bool, Query(description="Only open ones past their due date.")] = False,
                     limit: Limit = 100, offset: Offset = 0) -> dict[str, Any]:
    await _known(desk, code)
    today = today_shanghai()
    wanted_status: RejectionStatus | None = "open" if overdue else status
    found = await run_blocking(desk.rejections.list, code, wanted_status, today if overdue else None,
                               limit=limit, offset=offset)
    total_open = await run_blocking(desk.rejections.count, code, "open")
    total_overdue = await run_blocking(desk.rejections.count, code, "open", today)
    return {"items": [rejection_view(r, today) for r in found], "open": total_open, "overdue": total_overdue,
            "limit": limit, "offset": offset}


@router.post("/departments/{code}/rejections/{rejection_id}/resubmit",
             summary="Resubmit a corrected record through the rejected record's connector and mapping")
async def resubmit(code: Code, rejection_id: RejectionId, body: ResubmitBody, state: StateDep, desk: DeskDep,
                   who: Resubmitter) -> dict[str, Any]:
    await _known(desk, code)
    rejection = await run_blocking(desk.rejections.get, rejection_id)
    if rejection is None or rejection.department != code:
        raise ApiProblem(404, "REJECTION_UNKNOWN", "该部门没有这条被拒记录", f"no rejection {rejection_id} of {code!r}")
    if rejection.status != "open":
        raise ApiProblem(409, "REJECTION_NOT_OPEN", f"该记录已处理（{rejection.status}），无需重报",
                         f"the rejection is {rejection.status}, not open")
    result = await _publish(state, code, rejection, body.payload, body.variant)
    after = await run_blocking(desk.rejections.get, rejection_id)
    status = after.status if after is not None else rejection.status
    outcome = result.outcomes[0] if result.outcomes else None
    answer = {
        "rejection_id": rejection_id, "status": status, "resolved": status == "resolved",
        "outcome": None if outcome is None else {
            "status": outcome.status, "record_id": outcome.record_id,
            "errors": [e.as_dict() for e in outcome.errors], "warnings": [w.as_dict() for w in outcome.warnings]},
    }
    await run_blocking(desk.audit_log.record, who.actor, "rejection.resubmit", f"rejection:{rejection_id}",
                       before={"status": rejection.status, "record_id": rejection.record_id},
                       after={"status": status, "outcome": None if outcome is None else outcome.status,
                              "record_id": None if outcome is None else outcome.record_id,
                              "errors": [] if outcome is None else [e.code for e in outcome.errors]})
    return answer


async def _publish(state: ApiState, code: str, rejection: Rejection, payload: dict[str, Any],
                   variant: str | None) -> PublishResult:
    department = await run_blocking(department_identity, state, code)
    meta: dict[str, Any] = {"department": code}
    # The mapping the rejected record came through (a batch file's csv, xlsx or xml); a target's
    # rejection does not know it, so the resubmission names it when the connector has several.
    chosen = rejection.variant or variant
    offered = state.publisher.variants_of(rejection.connector)
    if chosen is None and len(offered) > 1:
        raise ApiProblem(422, "RESUBMIT_VARIANT_REQUIRED",
                         f"该连接器有多种数据格式，请在 variant 中注明重报数据的格式：{'、'.join(offered)}",
                         f"connector {rejection.connector!r} maps several formats: give variant, one of "
                         f"{', '.join(offered)}")
    if rejection.variant is None and variant is not None and variant not in offered:
        raise ApiProblem(422, "RESUBMIT_VARIANT_UNKNOWN", f"该连接器没有 {variant} 格式：可选 {'、'.join(offered)}",
                         f"connector {rejection.connector!r} has no variant {variant!r}: {', '.join(offered)}")
    if chosen is not None:
        meta["variant"] = chosen
    if department.provider_uscc:
        meta["provider_uscc"] = department.provider_uscc
    if department.admin_division_code:
        meta["admin_division_code"] = department.admin_division_code
    envelope = Envelope(connector=rejection.connector, payload=payload, received_at=datetime.now(UTC),
                        department=code, meta=meta, raw=None, records_inline=True)
    try:
        return await state.publisher.publish(envelope)
    except StoreUnavailable as exc:
        raise ApiProblem(503, "STORE_UNAVAILABLE", "存储暂不可用，请稍后重试", "store unavailable, retry later",
                         headers={"Retry-After": "5"}) from exc
    except ConfigError as exc:
        raise ApiProblem(409, "RESUBMIT_UNAVAILABLE", "该记录的连接器或映射已不存在，无法重报",
                         f"cannot resubmit through connector {rejection.connector!r}: {exc}") from exc
