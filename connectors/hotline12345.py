"""12345 hotline webhook: work orders pushed by the platform, signed with HMAC-SHA256.

Contract: hotline-12345/README.md. The gateway's push route (``POST /ingest/{connector}``) hands
the raw headers and body of each request to ``receive_push``, which answers in the contract's
shapes. Order of checks: signature over ``timestamp + "\\n" + body`` in constant time (4011), then
the timestamp window (4012), then the body (4000). A work order already answered for the same
(gdbh, tslx, X-12345-Delivery-Id) — a platform retry, re-signed or the very request again — gets
the same 202 body without being ingested twice; a signature already used whose answer is no longer
kept is refused (4013, not a contract code: 12345 alerts on any 401). 表扬 (sqlx 6) is
acknowledged and dropped. The source is answered 202 only after ``publish`` returned.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from connectors.base import ConnectorContext, ConnectorState, Publish, PublishReceipt
from connectors.codecs import decode
from gateway.envelope import Envelope
from gateway.errors import PayloadError, PermanentError, StoreUnavailable

log = logging.getLogger(__name__)

BEIJING = timezone(timedelta(hours=8))
PRAISE = "6"  # sqlx 表扬: not a request type of the standard, counted and not forwarded
MAX_GDBH_CHARS = 64  # keeps the answer-store key inside the state table's key column


class PushRefused(PermanentError):
    """A push the contract refuses: the HTTP status, the contract's code and message, and a counter."""

    def __init__(self, status: int, code: str, message_zh: str, counter: str, gdbh: str | None = None) -> None:
        super().__init__(f"{code} {message_zh}")
        self.status = status
        self.body: dict[str, Any] = {"code": code, "message": message_zh, "gdbh": gdbh}
        self.counter = counter


def render(body: Mapping[str, Any]) -> bytes:
    """An answer body, laid out as the contract's samples are (UTF-8, two-space indent)."""
    return json.dumps(body, ensure_ascii=False, indent=2).encode("utf-8")


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """Lower-case hex HMAC-SHA256 of ``timestamp + "\\n" + body`` (tools/signing.py)."""
    return hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"\n" + body, hashlib.sha256).hexdigest()


class ReplayCache:
    """Signatures already answered, in durable state, bucketed by their timestamp's window.

    A signature fixes its timestamp, so it can only sit in one bucket; a bucket is dropped once every
    timestamp in it is out of the window by more than ``ttl_s`` (the margin for clock skew).
    """

    INDEX = "seen-buckets"

    def __init__(self, state: ConnectorState, window_s: int, ttl_s: int) -> None:
        self._state, self._window_s, self._ttl_s = state, window_s, ttl_s

    def _key(self, bucket: int) -> str:
        return f"seen:{bucket}"

    async def seen(self, signature: str, timestamp: int) -> bool:
        return signature in (await self._state.load(self._key(timestamp // self._window_s)) or [])

    async def remember(self, signature: str, timestamp: int, now: float) -> None:
        bucket = timestamp // self._window_s
        signatures = await self._state.load(self._key(bucket)) or []
        await self._state.save(self._key(bucket), [*signatures, signature])
        index: list[int] = await self._state.load(self.INDEX) or []
        if bucket in index:
            return
        keep = []
        for old in index:
            if now - (old + 1) * self._window_s > self._window_s + self._ttl_s:
                await self._state.clear(self._key(old))
            else:
                keep.append(old)
        await self._state.save(self.INDEX, [*keep, bucket])


class AnswerStore:
    """The 202 body given for each (tslx, delivery id) of a work order, kept ``ttl_s`` for retries."""

    def __init__(self, state: ConnectorState, ttl_s: int) -> None:
        self._state, self._ttl_s = state, ttl_s

    async def get(self, gdbh: str, push: str, now: float) -> dict[str, Any] | None:
        entry = (await self._state.load(f"answer:{gdbh}") or {}).get(push)
        if entry is None or now - entry["at"] > self._ttl_s:
            return None
        answer: dict[str, Any] = entry["answer"]
        return answer

    async def put(self, gdbh: str, push: str, answer: dict[str, Any], now: float) -> None:
        entries = await self._state.load(f"answer:{gdbh}") or {}
        fresh = {k: v for k, v in entries.items() if now - v["at"] <= self._ttl_s}
        fresh[push] = {"answer": answer, "at": now}
        await self._state.save(f"answer:{gdbh}", fresh)


class Hotline12345Connector:
    class Config(BaseModel):
        model_config = ConfigDict(extra="forbid", frozen=True)
        secret: SecretStr = Field(description="Shared secret of the 12345 platform's pushes.")
        app_id: str = Field(default="hz12345", min_length=1, description="Expected X-12345-App-Id.")
        window_s: int = Field(default=300, ge=1, le=3600, description="Allowed |now - X-12345-Timestamp|.")
        replay_ttl_s: int = Field(default=600, ge=1, description="Margin a seen signature outlives the window.")
        answer_ttl_s: int = Field(default=3 * 86400, ge=60,
                                  description="How long a work order's answer is replayed to platform retries.")
        department: str | None = Field(default=None, description="Department owning the rejections.")
        max_body_bytes: int = Field(default=1024 * 1024, ge=1024, le=16 * 1024 * 1024)

        @field_validator("secret")
        @classmethod
        def _strong_enough(cls, value: SecretStr) -> SecretStr:
            if len(value.get_secret_value()) < 16:
                raise ValueError("the shared secret must have at least 16 characters")
            return value

        @model_validator(mode="after")
        def _ttl_covers_window(self) -> Hotline12345Connector.Config:
            if self.replay_ttl_s < self.window_s:
                raise ValueError("replay_ttl_s must be at least window_s, or a replay could outlive its record")
            return self

    pushes_over_http: ClassVar[bool] = True

    def __init__(self, connector_id: str, config: Config, context: ConnectorContext, *,
                 clock: Callable[[], float] = time.time) -> None:
        self.connector_id = connector_id
        self.config = config
        self.max_body_bytes = config.max_body_bytes
        self._clock = clock
        self._replays = ReplayCache(context.state, config.window_s, config.replay_ttl_s)
        self._answers = AnswerStore(context.state, config.answer_ttl_s)
        # One push at a time: "seen?" and "remember" must not interleave for the same signature.
        self._lock = asyncio.Lock()
        self._counts: Counter[str] = Counter()
        self._telemetry = context.telemetry

    async def run(self, publish: Publish) -> None:
        # The HTTP side lives in the gateway's API; nothing to poll.
        self._telemetry.state("running", "waiting for pushes")
        try:
            await asyncio.Event().wait()
        finally:
            self._telemetry.state("stopped")

    def counters(self) -> dict[str, int]:
        """Pushes by outcome: accepted, rejected, repeat_answered, praise_dropped, bad_signature,
        stale_timestamp, replay, malformed, store_unavailable (also reported to the telemetry)."""
        return dict(self._counts)

    def _count(self, name: str) -> None:
        self._counts[name] += 1
        self._telemetry.count(name)

    async def receive_push(self, headers: Mapping[str, str], body: bytes, publish: Publish) -> tuple[int, bytes]:
        """Verify, ingest and answer one push: ``(HTTP status, JSON body)`` as the contract has them."""
        lowered = {k.lower(): v for k, v in headers.items()}
        try:
            timestamp = self._authenticate(lowered, body)
            async with self._lock:
                return 202, render(await self._accept(lowered, timestamp, body, publish))
        except PushRefused as exc:
            self._count(exc.counter)
            log.warning("12345 push refused on %s: %s (delivery %s)", self.connector_id, exc,
                        lowered.get("x-12345-delivery-id"))
            return exc.status, render(exc.body)
        except StoreUnavailable as exc:
            self._count("store_unavailable")
            self._telemetry.error(f"store unavailable: {type(exc.__cause__ or exc).__name__}")
            log.warning("12345 push not acknowledged on %s: %s", self.connector_id, exc)
            return 503, render({"code": "5030", "message": "服务暂不可用，请稍后重试", "gdbh": None})

    def _authenticate(self, headers: Mapping[str, str], body: bytes) -> int:
        signature = headers.get("x-12345-signature", "").encode("utf-8", "replace")
        stamp = headers.get("x-12345-timestamp", "")
        app_ok = hmac.compare_digest(headers.get("x-12345-app-id", "").encode("utf-8", "replace"),
                                     self.config.app_id.encode("utf-8"))
        expected = sign(self.config.secret.get_secret_value(), stamp, body).encode() if stamp.isascii() else b""
        if not (app_ok and expected and hmac.compare_digest(expected, signature)):
            raise PushRefused(401, "4011", "签名校验失败", "bad_signature")
        if not (stamp.isdigit() and abs(self._clock() - int(stamp)) <= self.config.window_s):
            raise PushRefused(401, "4012", "时间戳超出允许范围", "stale_timestamp")
        return int(stamp)

    async def _accept(self, headers: Mapping[str, str], timestamp: int, body: bytes,
                      publish: Publish) -> dict[str, Any]:
        signature = headers["x-12345-signature"]
        replayed = await self._replays.seen(signature, timestamp)
        order = _work_order(body)
        gdbh, delivery = order["gdbh"], headers.get("x-12345-delivery-id", "").strip()
        if not delivery or len(delivery) > MAX_GDBH_CHARS:
            raise PushRefused(400, "4000", "缺少或无效的 X-12345-Delivery-Id", "malformed", gdbh)
        push = f"{order.get('tslx')}/{delivery}"
        now = self._clock()
        answer = await self._answers.get(gdbh, push, now)
        if replayed:
            # The very request again (12345 re-sending a push whose answer it lost, unchanged within the
            # window): its stored answer, nothing ingested. A 401 would make 12345 stop and alert
            # about a work order that was taken in. Without one, still refused.
            if answer is None:
                raise PushRefused(401, "4013", "重复请求（签名已使用）", "replay")
            self._count("replay")
            return answer
        if answer is not None:
            self._count("repeat_answered")
        else:
            answer = await self._ingest(order, body, headers, timestamp, publish)
            await self._answers.put(gdbh, push, answer, now)
        await self._replays.remember(signature, timestamp, now)
        return answer

    async def _ingest(self, order: dict[str, Any], body: bytes, headers: Mapping[str, str], timestamp: int,
                      publish: Publish) -> dict[str, Any]:
        received_at = datetime.fromtimestamp(self._clock(), UTC)
        envelope = Envelope(
            connector=self.connector_id, payload=order, received_at=received_at,
            department=self.config.department, raw=body, records_inline=True,
            meta={"timestamp": str(timestamp), "delivery_id": headers["x-12345-delivery-id"].strip(),
                  "app_id": headers.get("x-12345-app-id"), "ticket": order["gdbh"]})
        if str(order.get("sqlx")) == PRAISE:
            self._count("praise_dropped")
            return _answer(order["gdbh"], envelope, "accepted")
        status = _status(await publish(envelope))
        self._count(status)
        return _answer(order["gdbh"], envelope, status)


def _work_order(body: bytes) -> dict[str, Any]:
    try:
        order = decode("json", body)  # the route has bounded the body already
    except PayloadError as exc:
        raise PushRefused(400, "4000", "请求体不是合法的 JSON", "malformed") from exc
    gdbh = order.get("gdbh") if isinstance(order, dict) else None
    if not isinstance(gdbh, str) or not gdbh.strip() or len(gdbh) > MAX_GDBH_CHARS:
        raise PushRefused(400, "4000", "缺少工单编号 gdbh", "malformed")
    return {**order, "gdbh": gdbh.strip()}


def _status(receipt: PublishReceipt) -> str:
    # A copy already accepted (duplicate) is, for the platform, an accepted order.
    return "rejected" if receipt.rejected else "accepted"


def _answer(gdbh: str, envelope: Envelope, status: str) -> dict[str, Any]:
    day = envelope.received_at.astimezone(BEIJING).strftime("%Y%m%d")
    return {"code": "0000", "message": "已接收", "gdbh": gdbh,
            "receiptId": f"sgw-rcpt-{day}-{envelope.envelope_id}", "status": status}
