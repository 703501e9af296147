"""``GET /admin/audit``: the audit log, newest first, filtered and paged (admins only);
``GET /admin/audit/verify``: walk the hash chain."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from gateway.api.authz import Allow, Principal
from gateway.api.deps import DeskDep, run_blocking
from gateway.api.problems import ApiProblem
from gateway.stores.audit import AuditFilter

router = APIRouter(tags=["audit"])

AuditReader = Annotated[Principal, Depends(Allow("audit:read"))]


def _utc(moment: datetime | None) -> datetime | None:
    """A time without a zone is taken as UTC."""
    if moment is None:
        return None
    try:
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except OverflowError as exc:
        raise ApiProblem(422, "REQUEST_INVALID", "时间超出范围", "time out of range") from exc


@router.get("/audit", summary="Audit entries (who, when, what before and after), newest first")
async def list_audit(desk: DeskDep, _who: AuditReader,
                     actor: Annotated[str | None, Query(max_length=200)] = None,
                     action: Annotated[str | None, Query(max_length=64)] = None,
                     target: Annotated[str | None, Query(max_length=300)] = None,
                     since: datetime | None = None, until: datetime | None = None,
                     limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                     offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0) -> dict[str, Any]:
    where = AuditFilter(actor=actor, action=action, target=target, since=_utc(since), until=_utc(until))
    entries = await run_blocking(desk.audit_log.list, where, limit=limit, offset=offset)
    return {"items": [e.as_dict() for e in entries], "limit": limit, "offset": offset}


@router.get("/audit/verify", summary="Walk the hash chain: the first changed, removed or reordered entry")
async def verify_audit(desk: DeskDep, _who: AuditReader) -> dict[str, Any]:
    result = await run_blocking(desk.audit_log.verify)
    return {"ok": result.ok, "entries": result.entries, "first_bad_seq": result.first_bad_seq,
            "reason": result.reason}
