"""The national 互联网+监管 platform adapter: records pushed as signed JSON batches.

One ``deliver`` call is planned into batches within the record and byte limits; each batch is
signed (HMAC-SM3 or the HMAC-SHA256 fallback) and posted. Answers, per README §Responses:

- 200, and 409 ``40900`` (a replay of a batch the platform already has): one result per record ->
  delivered or rejected with the platform's code and message;
- 413: the batch is halved and each half sent under its own (new) batch_id;
- 400, 409 ``40901``: the batch is refused as a whole -> failed (a gateway bug, not the data);
- 401 ``40101``/``40102`` (clock, nonce): signed again and sent once more; other 401s -> failed;
- 429, 503, other 5xx, timeouts, resets -> retry (``retry_after_s`` from Retry-After), same
  batch_id next time: every batch is written to the batch journal (``adapters.journal``) before it
  is sent, and a record on a further attempt goes again in its journaled batch, byte for byte,
  however the outbox grouped it this time (after a crash, a reclaim or with other retries).

A batch-level stop (401 or unavailability) ends the call: the batches not yet sent get the same
outcome rather than hammering a platform that just said no.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import aiohttp
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from adapters.base import DeliveryResult, OutboundRecord
from adapters.journal import BatchJournal, JournalKeeper, SentBatch
from adapters.national_platform.http import json_object
from adapters.national_platform.payload import (
    MAX_BODY_BYTES,
    MAX_RECORDS,
    Encoded,
    batch_id_for,
    encode_body,
    encode_record,
    plan,
)
from adapters.national_platform.signing import BATCH_PATH, SignatureMethod, new_nonce, signed_headers
from gateway.errors import GatewayError, TargetRejected, TargetUnavailable, retry_after_s

_RESIGN_CODES = frozenset({"40101", "40102"})


class NationalPlatformConfig(BaseModel):
    """Options of the ``national_platform`` adapter."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: str = Field(pattern=r"^https?://", description="e.g. https://api.jgpt.example")
    app_id: str = Field(pattern=r"^[a-z0-9]{4,32}$", description="issued per province, e.g. zj330000sgw")
    app_secret: SecretStr
    signature_method: SignatureMethod = "HMAC-SM3"
    timeout_s: float = Field(default=30.0, gt=0, le=300)
    max_records: int = Field(default=MAX_RECORDS, ge=1, le=MAX_RECORDS)
    max_bytes: int = Field(default=MAX_BODY_BYTES, ge=1024, le=MAX_BODY_BYTES)


Config = NationalPlatformConfig


class _Reply:
    __slots__ = ("body", "status")

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        self.status = status
        self.body = body


class NationalPlatformAdapter:
    name = "national_platform"
    Config = NationalPlatformConfig

    def __init__(self, config: NationalPlatformConfig, *, clock_ms: Callable[[], int] | None = None,
                 nonce: Callable[[], str] | None = None) -> None:
        self._config = config
        self._url = config.base_url.rstrip("/") + BATCH_PATH
        self._clock_ms = clock_ms or (lambda: time.time_ns() // 1_000_000)
        self._nonce = nonce or new_nonce
        self._session: aiohttp.ClientSession | None = None
        self._journal = JournalKeeper()

    def use_journal(self, journal: BatchJournal) -> None:
        self._journal.use(journal)

    async def settled(self) -> None:
        """The worker settled the results of the last calls: their answered batches are done with."""
        await self._journal.settled()

    async def deliver(self, batch: Sequence[OutboundRecord]) -> list[DeliveryResult]:
        """Records on a further attempt go again in the journaled batch they were sent in (same
        batch_id, same body), the others in new batches planned within the limits."""
        in_hand = {r.record_id for r in batch}
        again = {r.record_id for r in batch if r.attempts > 1}
        journaled = await self._journal.recall(again) if again else []
        covered = {rid for sent in journaled for rid in sent.record_ids} & in_hand
        encoded = list({r.record_id: Encoded(r.record_id, encode_record(r.record))
                        for r in batch if r.record_id not in covered}.values())
        parts: list[SentBatch | list[Encoded]] = [*journaled, *plan(
            encoded, max_records=self._config.max_records, max_bytes=self._config.max_bytes,
            id_length=len(batch_id_for(self._config.app_id, ["x"])))]
        results: dict[str, DeliveryResult] = {}
        for index, part in enumerate(parts):
            try:
                if isinstance(part, SentBatch):
                    results.update(await self._send_again(part, in_hand, batch))
                else:
                    results.update(await self._send(part))
            except GatewayError as exc:
                for rest in parts[index:]:
                    ids = rest.record_ids if isinstance(rest, SentBatch) else [r.record_id for r in rest]
                    results.update({rid: DeliveryResult.of_stopped_batch(rid, exc) for rid in ids
                                    if rid in in_hand and rid not in results})
                break
        return [results[r.record_id] for r in batch]

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _send(self, part: list[Encoded]) -> dict[str, DeliveryResult]:
        batch_id = batch_id_for(self._config.app_id, [r.record_id for r in part])
        body = encode_body(batch_id, [r.body for r in part])
        await self._journal.remember(SentBatch(batch_id, tuple(r.record_id for r in part), body))
        reply = await self._post(body)
        self._journal.answered(batch_id)  # for good: stored, replayed, refused or too large
        if reply.status == 413:
            if len(part) == 1:
                return {part[0].record_id: DeliveryResult(part[0].record_id, "failed", code="41300", message=(
                    "单条记录超过国家平台报文上限 / the record alone exceeds the platform's size limit"))}
            half = len(part) // 2
            return {**await self._send(part[:half]), **await self._send(part[half:])}
        return _answer(batch_id, part, reply)

    async def _send_again(self, sent: SentBatch, in_hand: set[str],
                          batch: Sequence[OutboundRecord]) -> dict[str, DeliveryResult]:
        """A journaled batch as it was sent; results for the records in hand (the holders of the
        others send it again too, and get the replay). Forgotten once every record was in hand."""
        reply = await self._post(sent.body)
        if in_hand.issuperset(sent.record_ids):
            self._journal.answered(sent.batch_id)
        if reply.status == 413:  # the limits shrank since: the records in hand go in new batches
            mine = [Encoded(r.record_id, encode_record(r.record)) for r in batch if r.record_id in sent.record_ids]
            return await self._send(mine) if mine else {}
        part = [Encoded(rid, b"") for rid in sent.record_ids if rid in in_hand]
        return _answer(sent.batch_id, part, reply)

    async def _post(self, body: bytes) -> _Reply:
        """One signed POST; a clock or nonce 401 is signed afresh and sent once more."""
        for attempt in range(2):
            status, headers, raw = await self._exchange(body)
            reply = _Reply(status, json_object(raw))
            code = str(reply.body.get("code", ""))
            if status == 401:
                if code in _RESIGN_CODES and attempt == 0:
                    continue
                raise TargetRejected(f"国家平台鉴权失败 / the platform refused our signature: {code} "
                                     f"{reply.body.get('message', '')}".strip(), code=code or "401")
            if status == 429 or status >= 500:
                raise TargetUnavailable(f"国家平台暂不可用 / the platform is unavailable: HTTP {status} {code}".strip(),
                                        retry_after_s=retry_after_s(headers.get("Retry-After")))
            if status == 200 and "results" not in reply.body:
                raise TargetUnavailable("国家平台应答无法解析 / unreadable answer from the platform (HTTP 200)")
            return reply
        raise AssertionError("unreachable")  # pragma: no cover

    async def _exchange(self, body: bytes) -> tuple[int, Mapping[str, str], bytes]:
        headers = {"Content-Type": "application/json; charset=utf-8", **signed_headers(
            app_id=self._config.app_id, secret=self._config.app_secret.get_secret_value(),
            method=self._config.signature_method, body=body, timestamp_ms=self._clock_ms(), nonce=self._nonce())}
        try:
            async with self._client().post(self._url, data=body, headers=headers) as response:
                return response.status, response.headers, await response.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TargetUnavailable(f"国家平台连接失败 / cannot reach the platform: "
                                    f"{type(exc).__name__}: {exc}") from exc

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self._config.timeout_s))
        return self._session


def _answer(batch_id: str, part: Sequence[Encoded], reply: _Reply) -> dict[str, DeliveryResult]:
    code = str(reply.body.get("code", ""))
    if reply.status == 200 or (reply.status == 409 and code == "40900"):
        return _per_record(part, reply.body, replay=reply.status == 409)
    message = f"国家平台拒收整批 / the platform refused the batch: HTTP {reply.status} {code} " \
              f"{reply.body.get('message', '')}".strip()
    return {r.record_id: DeliveryResult(r.record_id, "failed", code=code or str(reply.status),
                                        message=message, receipt={"batch_id": batch_id}) for r in part}


def _per_record(part: Sequence[Encoded], body: Mapping[str, Any], *, replay: bool) -> dict[str, DeliveryResult]:
    batch_id = str(body.get("batch_id", ""))
    answers = {str(r.get("record_id")): r for r in body.get("results", []) if isinstance(r, Mapping)}
    # One receipt object for the batch: nothing changes a receipt, and settling encodes a shared one once.
    receipt: dict[str, Any] = {"batch_id": batch_id, "received_at": body.get("received_at"), "replay": replay}
    out: dict[str, DeliveryResult] = {}
    for rid, _ in part:
        answer = answers.get(rid)
        if answer is None:
            out[rid] = DeliveryResult(rid, "retry", code="NO_RESULT", message=(
                "国家平台未返回该记录的结果 / the platform gave no result for the record"))
            continue
        code, message = str(answer.get("code", "")), str(answer.get("message", ""))
        if answer.get("status") == "accepted":
            out[rid] = DeliveryResult(rid, "delivered", code, message, receipt)
        elif answer.get("field"):
            out[rid] = DeliveryResult(rid, "rejected", code or "10099", message, {**receipt, "field": answer["field"]})
        else:
            out[rid] = DeliveryResult(rid, "rejected", code or "10099", message, receipt)
    return out
