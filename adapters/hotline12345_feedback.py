"""12345 feedback: the handling result of a 12345 work order posted back to the hotline.

``POST {base_url}/api/workorders/{gdbh}/feedback`` signed like the 12345 webhook (HMAC-SHA256 over
``timestamp + "\\n" + body``, ``sources/hotline-12345/README.md`` §Feedback API). A ``complaint``
record of channel 12345 with ``closed_at`` is a 办结 (fklx 2), with only ``result_text`` a
阶段性反馈 (5); a record with neither, a deletion, or another channel has nothing to feed back and
is reported delivered with code ``NO_FEEDBACK``. Answers: 200 -> delivered; 404 (unknown gdbh) ->
the department's rejection; 409 on a 办结 -> delivered (the work order is closed already: this is
the resend of a closure whose answer was lost), on anything else -> rejected; 401 -> failed;
429 / 5xx / timeouts -> retry.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import aiohttp
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from adapters.base import DeliveryResult, OutboundRecord
from adapters.national_platform.http import json_object
from gateway.errors import retry_after_s

SHANGHAI = ZoneInfo("Asia/Shanghai")
MIN_CLOSING_TEXT = 20


class Hotline12345FeedbackConfig(BaseModel):
    """Options of the ``hotline12345_feedback`` adapter."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: str = Field(pattern=r"^https?://", description="e.g. https://12345.example")
    app_id: str = "sgw-zj"
    secret: SecretStr
    handler_name: str | None = Field(default=None, description="cbr 承办人 when the record names none")
    handler_phone: str | None = Field(default=None, description="cbrdh")
    timeout_s: float = Field(default=10.0, gt=0, le=120)


Config = Hotline12345FeedbackConfig


def sign(secret: str, timestamp: str, body: bytes) -> str:
    return hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"\n" + body, hashlib.sha256).hexdigest()


def _clsj(value: Any) -> str:
    """``closed_at`` (a date in the standard, a datetime from some sources) as yyyy-MM-dd HH:mm:ss."""
    text = str(value)
    if len(text) == 10:
        return f"{text} 00:00:00"
    return datetime.fromisoformat(text).astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")


def feedback_body(record: Mapping[str, Any], handler_name: str | None = None,
                  handler_phone: str | None = None) -> dict[str, Any] | None:
    """The feedback of a complaint record, or None when it has nothing to report."""
    if record.get("channel") != "12345" or record.get("operation") == "d" or not record.get("result_text"):
        return None
    closed = record.get("closed_at")
    body: dict[str, Any] = {"gdbh": record.get("source_ticket_no") or record.get("source_record_id"),
                            "fklx": "2" if closed else "5", "cbdw": record.get("handling_org_name"),
                            "cbdwdm": record.get("handling_org_uscc"), "cbr": handler_name, "cbrdh": handler_phone,
                            "clsj": _clsj(closed) if closed else None, "cljg": record.get("result_text"),
                            "sfsza": "1" if record.get("converted_to_case") else "0", "fj": []}
    return {k: v for k, v in body.items() if v is not None}


def encode(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class Hotline12345FeedbackAdapter:
    name = "hotline12345_feedback"
    Config = Hotline12345FeedbackConfig

    def __init__(self, config: Hotline12345FeedbackConfig, *, clock_s: Callable[[], int] | None = None) -> None:
        self._config = config
        self._clock_s = clock_s or (lambda: int(time.time()))
        self._session: aiohttp.ClientSession | None = None

    async def deliver(self, batch: Sequence[OutboundRecord]) -> list[DeliveryResult]:
        # One work order per call of the API; the hotline has no batch endpoint.
        return [await self._one(record) for record in batch]

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _one(self, record: OutboundRecord) -> DeliveryResult:
        rid = record.record_id
        body = feedback_body(record.record, self._config.handler_name, self._config.handler_phone)
        if body is None:
            return DeliveryResult(rid, "delivered", code="NO_FEEDBACK", message="无需反馈 / nothing to feed back")
        if body["fklx"] == "2" and len(str(body["cljg"])) < MIN_CLOSING_TEXT:
            return DeliveryResult(rid, "rejected", code="CLJG_TOO_SHORT", message=(
                f"办结的处理结果应不少于{MIN_CLOSING_TEXT}字 / a closing result needs {MIN_CLOSING_TEXT}+ characters"))
        return await self._post(rid, body)

    async def _post(self, rid: str, body: Mapping[str, Any]) -> DeliveryResult:
        raw = encode(body)
        stamp = str(self._clock_s())
        headers = {"Content-Type": "application/json; charset=utf-8", "X-12345-App-Id": self._config.app_id,
                   "X-12345-Timestamp": stamp,
                   "X-12345-Signature": sign(self._config.secret.get_secret_value(), stamp, raw)}
        url = f"{self._config.base_url.rstrip('/')}/api/workorders/{quote(str(body['gdbh']), safe='')}/feedback"
        try:
            async with self._client().post(url, data=raw, headers=headers) as response:
                status, answer, retry = response.status, json_object(await response.read()), \
                    response.headers.get("Retry-After")
        except (aiohttp.ClientError, TimeoutError) as exc:
            return DeliveryResult(rid, "retry", code="TARGET_UNAVAILABLE", message=(
                f"12345 平台连接失败 / cannot reach 12345: {type(exc).__name__}: {exc}"))
        return _result(rid, body, status, answer, retry)

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self._config.timeout_s))
        return self._session


def _result(rid: str, body: Mapping[str, Any], status: int, answer: Mapping[str, Any],
            retry: str | None) -> DeliveryResult:
    code, message = str(answer.get("code", status)), str(answer.get("msg") or answer.get("message") or "")
    if status == 200 and code == "0":
        data = answer.get("data")
        return DeliveryResult(rid, "delivered", code=code, message=message,
                              receipt={"gdbh": body["gdbh"], "fklx": body["fklx"],
                                       "gdzt": data.get("gdzt") if isinstance(data, Mapping) else None})
    if status == 409 and body["fklx"] == "2":
        return DeliveryResult(rid, "delivered", code=code, message=message,
                              receipt={"gdbh": body["gdbh"], "fklx": "2", "already_closed": True})
    if status in (404, 409) or (status == 400):
        return DeliveryResult(rid, "rejected", code=code, message=f"12345 拒收反馈 / 12345 refused: {message}")
    if status == 429 or status >= 500:
        return DeliveryResult(rid, "retry", code=code, message=f"12345 暂不可用 / 12345 unavailable: HTTP {status}",
                              retry_after_s=retry_after_s(retry))
    return DeliveryResult(rid, "failed", code=code, message=f"12345 拒绝请求 / 12345 refused the request: "
                                                            f"HTTP {status} {message}".strip())
