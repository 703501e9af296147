"""``POST /ingest/{connector}``: push ingest of one JSON object or an array of them.

Pushes are authenticated by a department's API key, unless the connector speaks a source's own
signed webhook (the 12345 HMAC): such a connector is a ``SignedPushConnector`` and verifies,
ingests and answers the request itself, in its contract's shapes.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, Protocol, runtime_checkable

import orjson
from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse, Response

from connectors.base import Publish
from gateway.api.deps import StateDep, current_department
from gateway.api.problems import ApiProblem
from gateway.api.state import ApiState
from gateway.envelope import Envelope
from gateway.errors import ConfigError, StoreUnavailable

router = APIRouter(tags=["ingest"])

RETRY_AFTER_S = "5"


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The body, refused with 413 as soon as it is larger than allowed (before it is all read)."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > max_bytes):
        raise ApiProblem(413, "PAYLOAD_TOO_LARGE", f"请求体超过 {max_bytes} 字节上限",
                         f"request body larger than {max_bytes} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise ApiProblem(413, "PAYLOAD_TOO_LARGE", f"请求体超过 {max_bytes} 字节上限",
                             f"request body larger than {max_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_payload(body: bytes, max_records: int) -> Any:
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ApiProblem(400, "MALFORMED", f"JSON 格式错误：{exc}", f"malformed JSON: {exc}") from exc
    if isinstance(payload, dict):
        return payload
    if isinstance(payload, list) and payload and all(isinstance(item, dict) for item in payload):
        if len(payload) > max_records:
            raise ApiProblem(413, "TOO_MANY_RECORDS", f"单次最多 {max_records} 条记录",
                             f"at most {max_records} records per request")
        return payload
    raise ApiProblem(422, "NOT_RECORDS", "请求体应为一个 JSON 对象或非空的对象数组",
                     "the body must be one JSON object or a non-empty array of objects")


@runtime_checkable
class SignedPushConnector(Protocol):
    """A push connector that authenticates and answers its source itself (a signed webhook).

    ``receive_push`` gets the raw headers and body (the signature covers the bytes as received) and
    returns the HTTP status and JSON body of its contract; it answers 2xx only after ``publish``.
    """

    max_body_bytes: int

    async def receive_push(self, headers: Mapping[str, str], body: bytes,
                           publish: Publish) -> tuple[int, bytes]: ...


def signed_push_connector(state: ApiState, connector: str) -> SignedPushConnector | None:
    if connector not in state.push_connectors:
        return None
    # The runtime hands the API its push connectors' instances as ``push_plugins`` (id -> instance).
    plugins = state.push_plugins
    plugin = plugins.get(connector)
    return plugin if isinstance(plugin, SignedPushConnector) else None


async def signed_push(plugin: SignedPushConnector, request: Request, state: ApiState) -> Response:
    body = await read_body(request, min(state.api.max_body_bytes, plugin.max_body_bytes))
    status, answer = await plugin.receive_push(request.headers, body, state.publisher)
    return Response(content=answer, status_code=status, media_type="application/json; charset=utf-8")


def refuse_if_paused(state: ApiState, connector: str) -> None:
    """A paused connector takes nothing: 503 with Retry-After, so the source keeps the data and retries
    (as it does when the store is down) instead of dropping it as it would on a 4xx."""
    if connector in state.paused_connectors:
        raise ApiProblem(503, "CONNECTOR_PAUSED", f"连接器 {connector} 已暂停，请稍后重试",
                         f"connector {connector!r} is paused, retry later", headers={"Retry-After": RETRY_AFTER_S})


@router.post("/ingest/{connector}", status_code=202, summary="Push records (one JSON object or an array)")
async def ingest(
    connector: str,
    request: Request,
    state: StateDep,
    x_api_key: Annotated[str | None, Header(alias="X-API-Key")] = None,
    authorization: Annotated[str | None, Header()] = None,
) -> Response:
    if (plugin := signed_push_connector(state, connector)) is not None:
        refuse_if_paused(state, connector)
        return await signed_push(plugin, request, state)
    department = current_department(state, x_api_key, authorization)
    settings = state.push_connectors.get(connector)
    if settings is None:
        raise ApiProblem(404, "CONNECTOR_UNKNOWN", f"不存在接收推送的连接器 {connector}",
                         f"no push connector {connector!r}")
    if settings.department is not None and settings.department != department.code:
        raise ApiProblem(403, "FORBIDDEN", "该 API 密钥无权向此连接器推送数据",
                         "this API key may not push to this connector")
    refuse_if_paused(state, connector)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise ApiProblem(415, "UNSUPPORTED_MEDIA_TYPE", "Content-Type 应为 application/json",
                         "Content-Type must be application/json")
    payload = parse_payload(await read_body(request, state.api.max_body_bytes), state.api.max_records_per_request)
    meta: dict[str, Any] = {"department": department.code}
    if department.provider_uscc:
        meta.setdefault("provider_uscc", department.provider_uscc)
    if department.admin_division_code:
        meta.setdefault("admin_division_code", department.admin_division_code)
    envelope = Envelope(connector=connector, payload=payload, received_at=datetime.now(UTC),
                        department=department.code, meta=meta, raw=None, records_inline=True)
    try:
        result = await state.publisher.publish(envelope)
    except StoreUnavailable as exc:
        raise ApiProblem(503, "STORE_UNAVAILABLE", "存储暂不可用，请稍后重试", "store unavailable, retry later",
                         headers={"Retry-After": RETRY_AFTER_S}) from exc
    except ConfigError as exc:
        raise ApiProblem(500, "CONFIG", "网关配置错误", f"gateway configuration error: {exc}") from exc
    receipt = result.receipt
    return JSONResponse(status_code=202, content={
        "envelope_id": receipt.envelope_id,
        "counts": {"accepted": receipt.accepted, "rejected": receipt.rejected, "duplicate": receipt.duplicate},
        "outcomes": [
            {"index": o.index, "status": o.status, "record_id": o.record_id, "location": o.location,
             "errors": [e.as_dict() for e in o.errors], "warnings": [w.as_dict() for w in o.warnings]}
            for o in result.outcomes
        ],
    })
