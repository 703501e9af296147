"""Admin routes for API keys: named staff tokens and department keys, issued (shown once), listed
(fingerprints only), rotated (the old key lives on for a grace period) and revoked."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from gateway.api.authz import Allow, Principal
from gateway.api.deps import DeskDep, run_blocking
from gateway.settings import ID_PATTERN

router = APIRouter(tags=["keys"])

KeyReader = Annotated[Principal, Depends(Allow("keys:read"))]
KeyWriter = Annotated[Principal, Depends(Allow("keys:write"))]
KeyId = Annotated[int, Path(ge=1, le=2**62)]
MAX_GRACE_S = 30 * 24 * 3600
RoleName = Literal["admin", "integrator", "ops", "department", "viewer"]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class IssueBody(_Body):
    name: str = Field(pattern=ID_PATTERN, description="Who holds the token (a person or a system).")
    role: RoleName
    department: str | None = Field(default=None, pattern=ID_PATTERN, description="Only for the department role.")


class RotateBody(_Body):
    grace_s: float = Field(default=0, ge=0, le=MAX_GRACE_S,
                           description="How long the old key keeps working (0: revoked at once).")


@router.get("/keys", summary="API keys issued through the API (fingerprints only)")
async def list_keys(desk: DeskDep, _who: KeyReader, department: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
                    role: RoleName | None = None, include_inactive: bool = False,
                    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0) -> dict[str, Any]:
    keys = await run_blocking(desk.service.keys.list, department=department, role=role,
                              include_inactive=include_inactive, limit=limit, offset=offset)
    return {"items": [k.as_dict() for k in keys]}


@router.post("/keys", status_code=201, summary="Issue a named token of a role: the key is in this answer only")
async def issue_key(body: IssueBody, desk: DeskDep, who: KeyWriter) -> dict[str, Any]:
    issued = await run_blocking(desk.service.issue_key, name=body.name, role=body.role,
                                department=body.department, actor=who.actor)
    return {"key": issued.key, **issued.record.as_dict()}


@router.get("/keys/{key_id}", summary="One key (fingerprint only)")
async def show_key(key_id: KeyId, desk: DeskDep, _who: KeyReader) -> dict[str, Any]:
    return (await run_blocking(desk.service.key, key_id)).as_dict()


@router.post("/keys/{key_id}/rotate", status_code=201,
             summary="A new key for the same holder; the old one ends after the grace period")
async def rotate_key(key_id: KeyId, desk: DeskDep, who: KeyWriter, body: RotateBody | None = None) -> dict[str, Any]:
    grace_s = body.grace_s if body is not None else 0.0
    issued = await run_blocking(desk.service.rotate_key, key_id, grace_s=grace_s, actor=who.actor)
    return {"key": issued.key, **issued.record.as_dict(), "replaces": key_id}


@router.post("/keys/{key_id}/revoke", summary="Revoke a key at once")
async def revoke_key(key_id: KeyId, desk: DeskDep, who: KeyWriter) -> dict[str, Any]:
    return (await run_blocking(desk.service.revoke_key, key_id, actor=who.actor)).as_dict()
