"""The credit platform adapter against the fake credit platform, over real HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from adapters.base import OutboundRecord
from adapters.credit_exchange import CreditExchangeAdapter, CreditExchangeConfig
from tests.peers.credit_platform_server import API_KEY, PATH, CreditPlatformServer
from tests.unit.test_credit_exchange_message import licence, tonglu_penalty

pytestmark = pytest.mark.integration
MESSAGE_1007 = "修改的数据不存在：未找到已公示记录"


def batch() -> list[OutboundRecord]:
    return [OutboundRecord("cp-1", "credit_penalty", tonglu_penalty(record_id="cp-1")),
            OutboundRecord("cp-2", "credit_penalty", tonglu_penalty(record_id="cp-2", operation="u")),
            OutboundRecord("xk-1", "credit_license", licence(record_id="xk-1"))]


def adapter_for(server: CreditPlatformServer, api_key: str = API_KEY) -> CreditExchangeAdapter:
    return CreditExchangeAdapter(CreditExchangeConfig(url=server.url + PATH, api_key=api_key))  # type: ignore[arg-type]


@pytest.fixture
async def fake() -> AsyncIterator[CreditPlatformServer]:
    async with CreditPlatformServer() as server:
        yield server


async def test_records_are_published_per_item_and_a_rejection_keeps_the_platform_code(
        fake: CreditPlatformServer) -> None:
    fake.reject("cp-2", "1007", MESSAGE_1007, "CF_WSH")
    adapter = adapter_for(fake)
    try:
        results = await adapter.deliver(batch())
    finally:
        await adapter.close()
    assert [(r.status, r.code) for r in results] == [("delivered", "0000"), ("rejected", "1007"), ("delivered", "0000")]
    assert results[1].message == MESSAGE_1007 and results[1].receipt and results[1].receipt["field"] == "CF_WSH"
    assert results[0].receipt and results[0].receipt["platform_id"]
    assert [r.result_code for r in fake.received] == ["0000", "0000"]  # one CF and one XK message, both schema-valid
    cf = next(r for r in fake.received if r.local_ids[0] == "cp-1")
    assert cf.ops == ("I", "U") and cf.fields[0]["CF_NR_FK"] == "5" and cf.fields[0]["CF_NR_WFFF"] == "0.326"
    assert fake.stored == {"cp-1": 1, "xk-1": 1}


async def test_a_record_that_would_break_the_schema_is_held_back_alone(fake: CreditPlatformServer) -> None:
    records = [*batch()[:1], OutboundRecord("bad", "credit_penalty", tonglu_penalty(record_id="bad",
                                                                                     decided_on="2025/6/18"))]
    adapter = adapter_for(fake)
    try:
        results = await adapter.deliver(records)
    finally:
        await adapter.close()
    assert [(r.status, r.code) for r in results] == [("delivered", "0000"), ("rejected", "1002")]
    assert "CF_JDRQ" in (results[1].message or "")
    assert fake.received[0].local_ids == ("cp-1",)


async def test_a_lost_answer_is_answered_from_the_stored_sn(fake: CreditPlatformServer) -> None:
    fake.lose_answers(1)
    adapter = adapter_for(fake)
    records = batch()[:2]
    try:
        first = await adapter.deliver(records)
        second = await adapter.deliver(records)
    finally:
        await adapter.close()
    assert {r.status for r in first} == {"retry"}
    assert {r.status for r in second} == {"delivered"}
    assert fake.received[0].sn == fake.received[1].sn
    assert fake.stored == {"cp-1": 1, "cp-2": 1}


async def test_busy_unavailable_and_a_bad_key(fake: CreditPlatformServer) -> None:
    fake.busy(1)
    adapter = adapter_for(fake)
    wrong = adapter_for(fake, api_key="wrong")
    try:
        busy = await adapter.deliver(batch())
        fake.unavailable_for(30, retry_after_s=12)
        down = await adapter.deliver(batch())
        fake.unavailable_for(0)
        refused = await wrong.deliver(batch())
        fine = await adapter.deliver(batch())
    finally:
        await adapter.close()
        await wrong.close()
    assert {r.status for r in busy} == {"retry"}
    assert {(r.status, r.retry_after_s) for r in down} == {("retry", 12.0)}
    assert {(r.status, r.code) for r in refused} == {("failed", "401")}
    assert {r.status for r in fine} == {"delivered"}


async def test_413_halves_the_message() -> None:
    async with CreditPlatformServer(max_records=1) as fake:
        adapter = adapter_for(fake)
        try:
            results = await adapter.deliver(batch()[:2])
        finally:
            await adapter.close()
    assert {r.status for r in results} == {"delivered"}
    assert fake.statuses() == [413, 200, 200]
    assert fake.stored == {"cp-1": 1, "cp-2": 1}
