"""A generic HTTP target: batches of records POSTed as one JSON array to a configured URL.

Each record is first projected to the target's field names (``projection``, see
``adapters.http_sink.projection``; none: the standard record as is). A batch larger than
``max_records_per_request`` is sent in several requests over one keep-alive session. The target
answers for a request as a whole, so every record of a request gets the request's outcome:

- 2xx -> delivered;
- 408, 429, 5xx, timeouts, resets -> retry (``retry_after_s`` from Retry-After);
- 413 -> the request is halved and each half sent again (a lone record too large -> failed);
- any other status (4xx, and 3xx: redirects are not followed) -> failed, i.e. dead letters: the
  request is refused as such (wrong URL, credentials, shape), which retrying cannot fix.

After a retry or a refusal the requests not yet sent get the same outcome rather than
hammering a target that just said no. A record the projection cannot convert fails alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import aiohttp
import orjson
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from adapters.base import DeliveryResult, OutboundRecord
from adapters.http_sink.projection import ProjectionError, Rule, compile_projection
from gateway.errors import GatewayError, TargetRejected, TargetUnavailable, retry_after_s

_TRANSIENT = frozenset({408, 429})


class HttpPostConfig(BaseModel):
    """Options of the ``http_post`` adapter."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(pattern=r"^https?://", description="Where the JSON arrays are sent.")
    method: Literal["POST", "PUT"] = "POST"
    headers: dict[str, str] = Field(default_factory=dict, description="Extra request headers (no secrets).")
    bearer_token: SecretStr | None = Field(default=None, description="Sent as Authorization: Bearer ...")
    timeout_s: float = Field(default=10.0, gt=0, le=300)
    max_records_per_request: int = Field(default=500, ge=1, le=10_000)
    max_connections: int = Field(default=4, ge=1, le=100, description="Keep-alive connections to the target.")
    projection: dict[str, Rule] | None = Field(
        default=None, description="Output field -> standard field path (or rule); unset: the record as is.")
    keep_absent: bool = Field(default=False, description="Absent values as null instead of left out.")


Config = HttpPostConfig


def _default(value: Any) -> Any:
    # Decimal, date and the like: their text, as the standard writes them
    return str(value)


class HttpPostAdapter:
    name = "http_post"
    Config = HttpPostConfig

    def __init__(self, config: HttpPostConfig) -> None:
        self._config = config
        self._project = compile_projection(config.projection, keep_absent=config.keep_absent)
        self._headers = {"Content-Type": "application/json", **config.headers}
        if config.bearer_token is not None:
            self._headers["Authorization"] = f"Bearer {config.bearer_token.get_secret_value()}"
        self._session: aiohttp.ClientSession | None = None

    async def deliver(self, batch: Sequence[OutboundRecord]) -> list[DeliveryResult]:
        results: dict[str, DeliveryResult] = {}
        ready: list[tuple[str, bytes]] = []
        for item in batch:
            try:
                ready.append((item.record_id, orjson.dumps(self._project(item.record), default=_default)))
            except (ProjectionError, TypeError) as exc:
                results[item.record_id] = DeliveryResult(item.record_id, "failed", code="PROJECTION", message=(
                    f"记录无法转换为目标格式 / the record cannot take the target's shape: {exc}"))
        size = self._config.max_records_per_request
        parts = [ready[i:i + size] for i in range(0, len(ready), size)]
        for index, part in enumerate(parts):
            try:
                results.update(await self._send(part))
            except GatewayError as exc:
                for rest in parts[index:]:
                    results.update({rid: DeliveryResult.of_stopped_batch(rid, exc) for rid, _ in rest
                                    if rid not in results})
                break
        return [results[item.record_id] for item in batch]

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _send(self, part: list[tuple[str, bytes]]) -> dict[str, DeliveryResult]:
        status = await self._post(b"[" + b",".join(body for _, body in part) + b"]")
        if status == 413:
            if len(part) == 1:
                rid = part[0][0]
                return {rid: DeliveryResult(rid, "failed", code="HTTP_413", message=(
                    "单条记录超过目标的报文上限 / the record alone exceeds the target's size limit"))}
            half = len(part) // 2
            return {**await self._send(part[:half]), **await self._send(part[half:])}
        receipt = {"http_status": status}
        return {rid: DeliveryResult(rid, "delivered", code=str(status), receipt=receipt) for rid, _ in part}

    async def _post(self, body: bytes) -> int:
        """The status of one request: 2xx and 413 returned, anything else raised as what it means."""
        config = self._config
        try:
            async with self._client().request(config.method, config.url, data=body, headers=self._headers,
                                              allow_redirects=False) as response:
                await response.read()
                status, retry = response.status, response.headers.get("Retry-After")
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TargetUnavailable(f"目标连接失败 / cannot reach the target: {type(exc).__name__}: {exc}") from exc
        if 200 <= status < 300 or status == 413:
            return status
        if status in _TRANSIENT or status >= 500:
            raise TargetUnavailable(f"目标暂不可用 / the target is unavailable: HTTP {status}",
                                    retry_after_s=retry_after_s(retry))
        raise TargetRejected(f"目标拒绝请求 / the target refused the request: HTTP {status}", code=f"HTTP_{status}")

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self._config.max_connections)
            self._session = aiohttp.ClientSession(connector=connector,
                                                  timeout=aiohttp.ClientTimeout(total=self._config.timeout_s))
        return self._session

