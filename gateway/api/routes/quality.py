"""Data quality per department over a period: validity, rejection reasons, duplicates, timeliness,
open and overdue rejections (``gateway.quality``). Staff see every department; a department only
its own."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from gateway.api.authz import Allow, Principal, department_scope
from gateway.api.deps import StateDep
from gateway.api.problems import ApiProblem
from gateway.errors import StoreUnavailable
from gateway.ops_view import OpsView
from gateway.quality import SHANGHAI, Period

router = APIRouter(tags=["quality"])
QualityReader = Annotated[Principal, Depends(Allow("quality:read"))]
DEFAULT_DAYS = 30
MAX_DAYS = 366


def ops_view_of(state: StateDep) -> OpsView:
    if state.ops_view is None:
        raise ApiProblem(503, "OPS_UNAVAILABLE", "运维接口不可用", "ops view not available")
    return state.ops_view


OpsViewDep = Annotated[OpsView, Depends(ops_view_of)]
FromQuery = Annotated[date | None, Query(alias="from", description="First day (Asia/Shanghai), default 30 days ago")]
ToQuery = Annotated[date | None, Query(alias="to", description="Last day, included (default today)")]


def period_of(start: date | None, end: date | None) -> Period:
    today = datetime.now(SHANGHAI).date()
    end = end or today
    start = start or end - timedelta(days=DEFAULT_DAYS - 1)
    if start > end:
        raise ApiProblem(422, "REQUEST_INVALID", "起始日期晚于结束日期", "'from' is after 'to'")
    if (end - start).days >= MAX_DAYS:
        raise ApiProblem(422, "REQUEST_INVALID", f"统计期间不能超过 {MAX_DAYS} 天",
                         f"a period spans at most {MAX_DAYS} days")
    return Period(start, end)


async def _compute(view: OpsView, period: Period, only: str | None) -> list[dict[str, Any]]:
    departments = [] if only is not None else view.department_codes()
    try:
        found = await asyncio.to_thread(view.quality.compute, period, departments, only)
    except StoreUnavailable as exc:
        raise ApiProblem(503, "STORE_UNAVAILABLE", "存储暂不可用，请稍后重试", "store unavailable, retry later",
                         headers={"Retry-After": "5"}) from exc
    return [q.as_dict() for q in found]


def _answer(period: Period, items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"from": period.start.isoformat(), "to": period.end.isoformat(), "departments": items}


@router.get("/quality", summary="Data quality of every department over a period (a department: its own)")
async def all_departments(view: OpsViewDep, who: QualityReader, start: FromQuery = None,
                          end: ToQuery = None) -> dict[str, Any]:
    period = period_of(start, end)
    return _answer(period, await _compute(view, period, department_scope(who, None)))


@router.get("/quality/{department}", summary="Data quality of one department over a period")
async def one_department(department: str, view: OpsViewDep, who: QualityReader, start: FromQuery = None,
                         end: ToQuery = None) -> dict[str, Any]:
    period = period_of(start, end)
    return _answer(period, await _compute(view, period, department_scope(who, department)))
