"""The credit platform adapter: credit_license / credit_penalty published as ExchangeMessage XML.

One message per item type (XK or CF) and chunk of at most ``max_records`` records and
``max_bytes``. The ``sn`` is derived from the records it carries, and every message is written to
the batch journal (``adapters.journal``) before it is sent: a record on a further attempt goes again
in its journaled message, byte for byte and under the same ``sn``, however the outbox grouped it this
time, so the platform answers with its stored response instead of taking a second submission
(1006 for an I, 1007 for a D). Answers
(``sources/credit-publication/README.md`` (b)): ``resultCode`` 0000 -> one result per record
(accepted -> delivered, 1xxx -> the department's rejection with the platform's code and message);
9003 -> retry; other 9xxx -> the message failed as a whole; HTTP 401 -> failed; 413 -> halved;
429, 5xx, timeouts -> retry. A record whose value would break the schema is rejected before sending
so that it cannot take the others down with a 9001.
"""

from __future__ import annotations

import hashlib
import ssl
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from adapters.base import DeliveryResult, DeliveryStatus, OutboundRecord
from adapters.credit_exchange.fields import ITEMS, FieldError, render_fields
from adapters.credit_exchange.message import Answer, Header, RecordXml, build_request, parse_answer
from adapters.journal import BatchJournal, JournalKeeper, SentBatch
from gateway.errors import GatewayError, TargetRejected, TargetUnavailable, retry_after_s

SHANGHAI = ZoneInfo("Asia/Shanghai")
MAX_RECORDS = 1000
MAX_BODY_BYTES = 10 * 1_048_576


class CreditExchangeConfig(BaseModel):
    """Options of the ``credit_exchange`` adapter."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(pattern=r"^https?://", description="e.g. https://xypt.example/sgs/exchange")
    api_key: SecretStr
    sender: str = "SGW-ZJ"
    receiver: str = "XYPT-ZJ"
    sn_prefix: str = Field(default="SGWZJ", pattern=r"^[A-Za-z0-9_]{1,16}$")
    operator: str | None = None
    contacts: str | None = None
    timeout_s: float = Field(default=60.0, gt=0, le=600)
    max_records: int = Field(default=MAX_RECORDS, ge=1, le=MAX_RECORDS)
    max_bytes: int = Field(default=MAX_BODY_BYTES, ge=1024, le=MAX_BODY_BYTES)
    client_cert_file: str | None = Field(default=None, description="mutual TLS: client certificate (PEM)")
    client_key_file: str | None = None
    ca_file: str | None = None


Config = CreditExchangeConfig


class CreditExchangeAdapter:
    name = "credit_exchange"
    Config = CreditExchangeConfig

    def __init__(self, config: CreditExchangeConfig, *, clock: Callable[[], datetime] | None = None) -> None:
        self._config = config
        self._clock = clock or (lambda: datetime.now(UTC))
        self._session: aiohttp.ClientSession | None = None
        self._journal = JournalKeeper()

    def use_journal(self, journal: BatchJournal) -> None:
        self._journal.use(journal)

    async def settled(self) -> None:
        """The worker settled the results of the last calls: their answered messages are done with."""
        await self._journal.settled()

    async def deliver(self, batch: Sequence[OutboundRecord]) -> list[DeliveryResult]:
        """Records on a further attempt go again in the journaled message they were sent in (same
        sn), the others in new messages."""
        in_hand = {r.record_id for r in batch}
        again = {r.record_id for r in batch if r.attempts > 1}
        journaled = await self._journal.recall(again) if again else []
        covered = {rid for sent in journaled for rid in sent.record_ids} & in_hand
        results: dict[str, DeliveryResult] = {}
        pending: list[SentBatch | tuple[str, list[RecordXml]]] = [*journaled, *self._plan(
            [r for r in {r.record_id: r for r in batch}.values() if r.record_id not in covered], results)]
        for index, part in enumerate(pending):
            try:
                if isinstance(part, SentBatch):
                    results.update(await self._send_again(part, in_hand, batch))
                else:
                    results.update(await self._send(*part))
            except GatewayError as exc:
                for rest in pending[index:]:
                    ids = rest.record_ids if isinstance(rest, SentBatch) else [r.local_id for r in rest[1]]
                    results.update({rid: DeliveryResult.of_stopped_batch(rid, exc) for rid in ids
                                    if rid in in_hand and rid not in results})
                break
        return [results[r.record_id] for r in batch]

    def _plan(self, records: Sequence[OutboundRecord],
              results: dict[str, DeliveryResult]) -> list[tuple[str, list[RecordXml]]]:
        """Messages (kind, records) for ``records``; those held back get their result in ``results``."""
        groups: dict[str, list[RecordXml]] = {}
        for record in records:
            outcome = _prepare(record)
            if isinstance(outcome, DeliveryResult):
                results[record.record_id] = outcome
            else:
                groups.setdefault(record.kind, []).append(outcome)
        return [(kind, chunk) for kind, items in groups.items() for chunk in _chunks(items, self._config.max_records)]

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def sn_for(self, item: str, records: Sequence[RecordXml]) -> str:
        digest = hashlib.sha256("\n".join(r.local_id for r in records).encode("utf-8")).hexdigest()
        return f"{self._config.sn_prefix}-{item}-{digest[:40]}"

    def message(self, kind: str, records: Sequence[RecordXml]) -> bytes:
        item, flow, _ = ITEMS[kind]
        header = Header(sender=self._config.sender, receiver=self._config.receiver, flow=flow, item=item,
                        sn=self.sn_for(item, records), operator=self._config.operator,
                        contacts=self._config.contacts,
                        send_time=self._clock().astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S"))
        return build_request(header, records)

    async def _send(self, kind: str, records: list[RecordXml]) -> dict[str, DeliveryResult]:
        body = self.message(kind, records)
        if len(body) > self._config.max_bytes:
            status, answer = 413, None
        else:
            sn = self.sn_for(ITEMS[kind][0], records)
            await self._journal.remember(SentBatch(sn, tuple(r.local_id for r in records), body))
            status, answer = await self._post(body)
            self._journal.answered(sn)  # for good: processed, refused as a whole or too large
        if status == 413:
            if len(records) == 1:
                rid = records[0].local_id
                return {rid: DeliveryResult(rid, "failed", code="413", message=(
                    "单条记录超过信用平台报文上限 / the record alone exceeds the credit platform's size limit"))}
            half = len(records) // 2
            return {**await self._send(kind, records[:half]), **await self._send(kind, records[half:])}
        if answer is None:  # pragma: no cover - _post answers None only with 413
            raise TargetUnavailable("信用平台无应答 / no answer from the credit platform")
        return _settle([r.local_id for r in records], answer)

    async def _send_again(self, sent: SentBatch, in_hand: set[str],
                          batch: Sequence[OutboundRecord]) -> dict[str, DeliveryResult]:
        """A journaled message as it was sent; results for the records in hand (the holders of the
        others send it again too, and get the stored answer). Forgotten once every record was in hand."""
        status, answer = await self._post(sent.body)
        if in_hand.issuperset(sent.record_ids):
            self._journal.answered(sent.batch_id)
        if status == 413 or answer is None:  # the limits shrank since: the records in hand go in new messages
            results: dict[str, DeliveryResult] = {}
            mine = [r for r in {r.record_id: r for r in batch}.values() if r.record_id in sent.record_ids]
            for kind, chunk in self._plan(mine, results):
                results.update(await self._send(kind, chunk))
            return results
        return _settle([rid for rid in sent.record_ids if rid in in_hand], answer)

    async def _post(self, body: bytes) -> tuple[int, Answer | None]:
        headers = {"Content-Type": "application/xml; charset=UTF-8", "X-Sender": self._config.sender,
                   "X-Api-Key": self._config.api_key.get_secret_value()}
        try:
            async with self._client().post(self._config.url, data=body, headers=headers) as response:
                status, raw, retry = response.status, await response.read(), response.headers.get("Retry-After")
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TargetUnavailable(f"信用平台连接失败 / cannot reach the credit platform: "
                                    f"{type(exc).__name__}: {exc}") from exc
        if status == 413:
            return status, None
        if status == 401:
            raise TargetRejected("信用平台拒绝 API Key / the credit platform refused our key (HTTP 401)", code="401")
        if status == 429 or status >= 500:
            raise TargetUnavailable(f"信用平台暂不可用 / the credit platform is unavailable: HTTP {status}",
                                    retry_after_s=retry_after_s(retry))
        if status != 200:
            raise TargetRejected(f"信用平台拒收报文 / the credit platform refused the message: HTTP {status}",
                                 code=str(status))
        answer = parse_answer(raw)
        if answer.result_code == "9003":
            raise TargetUnavailable(f"信用平台繁忙 / the credit platform is busy: {answer.result_message}")
        return status, answer

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self._config.timeout_s),
                connector=aiohttp.TCPConnector(ssl=self._ssl()))
        return self._session

    def _ssl(self) -> ssl.SSLContext | bool:
        if not (self._config.client_cert_file or self._config.ca_file):
            return True
        context = ssl.create_default_context(cafile=self._config.ca_file)
        if self._config.client_cert_file:
            context.load_cert_chain(self._config.client_cert_file, self._config.client_key_file)
        return context


def _prepare(record: OutboundRecord) -> RecordXml | DeliveryResult:
    rid = record.record_id
    if record.kind not in ITEMS:
        return DeliveryResult(rid, "failed", code="KIND_UNROUTED", message=(
            f"信用平台不接收 {record.kind} / the credit platform takes credit_license and credit_penalty only"))
    try:
        fields = render_fields(record.kind, record.record)
    except FieldError as exc:
        return DeliveryResult(rid, "rejected", code=exc.code, message=(
            f"网关预检未通过，字段 {exc.element} / gateway pre-check failed on {exc.element}: {exc.reason}"),
            receipt={"field": exc.element})
    return RecordXml(local_id=rid, operation=str(record.record.get("operation", "i")), fields=fields)


def _chunks(items: list[RecordXml], size: int) -> list[list[RecordXml]]:
    return [items[start:start + size] for start in range(0, len(items), size)]


def _settle(local_ids: Sequence[str], answer: Answer) -> dict[str, DeliveryResult]:
    if answer.result_code != "0000":
        message = f"信用平台拒收整个报文 / the credit platform refused the message: " \
                  f"{answer.result_code} {answer.result_message}"
        return {rid: DeliveryResult(rid, "failed", code=answer.result_code, message=message) for rid in local_ids}
    by_id = {r.local_id: r for r in answer.results}
    out: dict[str, DeliveryResult] = {}
    for local_id in local_ids:
        found = by_id.get(local_id)
        if found is None:
            out[local_id] = DeliveryResult(local_id, "retry", code="NO_RESULT", message=(
                "信用平台未返回该记录的结果 / the credit platform gave no result for the record"))
            continue
        receipt: dict[str, Any] = {"sn": answer.ref_sn, "platform_id": found.platform_id}
        if found.field:
            receipt["field"] = found.field
        status: DeliveryStatus = "delivered" if found.status == "accepted" else "rejected"
        out[local_id] = DeliveryResult(local_id, status, code=found.code, message=found.message, receipt=receipt)
    return out

