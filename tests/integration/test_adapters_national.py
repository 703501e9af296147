"""The national-platform adapter against the fake platform, over real HTTP."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from adapters.base import OutboundRecord
from adapters.journal import MemoryJournal
from adapters.national_platform import NationalPlatformAdapter, NationalPlatformConfig
from gateway.stores.db import create_engine_for, init_schema
from gateway.stores.sent_batches import SqlBatchJournal
from tests.peers.national_platform_server import APP_ID, APP_SECRET, NationalPlatformServer

pytestmark = pytest.mark.integration
DATA = Path(__file__).resolve().parent.parent / "data" / "national_platform"
MESSAGE_10008 = "监管事项编码31000000100101在国家监管事项目录中不存在或未被该实施机构认领"


def records() -> list[OutboundRecord]:
    body = json.loads((DATA / "batch-request.body.json").read_text(encoding="utf-8"))
    return [OutboundRecord(r["record_id"], r["record_kind"], r, department="dept") for r in body["records"]]


def adapter_for(url: str, **options: Any) -> NationalPlatformAdapter:
    return NationalPlatformAdapter(NationalPlatformConfig.model_validate(
        {"base_url": url, "app_id": APP_ID, "app_secret": APP_SECRET, **options}))


@pytest.fixture
async def fake() -> AsyncIterator[NationalPlatformServer]:
    async with NationalPlatformServer() as server:
        yield server


async def test_accepted_records_are_delivered_and_a_rejected_one_carries_the_platform_code(
        fake: NationalPlatformServer) -> None:
    batch = records()
    fake.reject(batch[2].record_id, "10008", MESSAGE_10008, "supervision_item_code")
    adapter = adapter_for(fake.url)
    try:
        results = await adapter.deliver(batch)
    finally:
        await adapter.close()
    assert [r.status for r in results] == ["delivered", "delivered", "rejected", "delivered"]
    assert (results[2].code, results[2].message) == ("10008", MESSAGE_10008)
    assert results[2].receipt is not None and results[2].receipt["field"] == "supervision_item_code"
    assert results[0].code == "00000" and results[0].receipt and results[0].receipt["batch_id"].startswith(APP_ID)
    assert fake.statuses() == [200]
    assert fake.stored == {r.record_id: 1 for i, r in enumerate(batch) if i != 2}


async def test_the_hmac_sha256_fallback_is_accepted(fake: NationalPlatformServer) -> None:
    adapter = adapter_for(fake.url, signature_method="HMAC-SHA256")
    try:
        results = await adapter.deliver(records())
    finally:
        await adapter.close()
    assert {r.status for r in results} == {"delivered"}


async def test_a_413_splits_the_batch_under_new_batch_ids() -> None:
    async with NationalPlatformServer(max_records=2) as fake:
        adapter = adapter_for(fake.url)
        try:
            results = await adapter.deliver(records())
        finally:
            await adapter.close()
    assert {r.status for r in results} == {"delivered"}
    assert fake.statuses() == [413, 200, 200]
    assert len({r.batch_id for r in fake.received}) == 3
    assert sorted(len(r.record_ids) for r in fake.received[1:]) == [2, 2]
    assert set(fake.stored.values()) == {1}


async def test_a_byte_limit_413_is_split_down_to_what_fits() -> None:
    size = len((DATA / "batch-request.http").read_bytes())
    async with NationalPlatformServer(max_bytes=size // 2) as fake:
        adapter = adapter_for(fake.url)
        try:
            results = await adapter.deliver(records())
        finally:
            await adapter.close()
    assert {r.status for r in results} == {"delivered"}
    assert fake.statuses()[0] == 413 and fake.statuses()[-1] == 200
    assert all(r.size_bytes <= size // 2 for r in fake.received if r.status == 200)
    assert fake.stored == {r.record_id: 1 for r in records()}


async def test_a_lost_answer_is_replayed_idempotently_with_409(fake: NationalPlatformServer) -> None:
    batch = records()
    fake.reject(batch[2].record_id, "10008", MESSAGE_10008)
    fake.lose_answers(1)
    adapter = adapter_for(fake.url)
    try:
        first = await adapter.deliver(batch)
        second = await adapter.deliver(batch)
    finally:
        await adapter.close()
    assert {r.status for r in first} == {"retry"}
    assert [r.status for r in second] == ["delivered", "delivered", "rejected", "delivered"]
    assert second[0].receipt is not None and second[0].receipt["replay"] is True
    assert second[2].code == "10008"
    assert fake.statuses() == [502, 409]
    assert fake.received[0].batch_id == fake.received[1].batch_id
    assert fake.stored == {r.record_id: 1 for i, r in enumerate(batch) if i != 2}  # exactly once


def again(record: OutboundRecord) -> OutboundRecord:
    return dataclasses.replace(record, attempts=record.attempts + 1)


async def test_a_batch_whose_answer_was_lost_goes_again_whole_however_its_records_come_back(
        fake: NationalPlatformServer, tmp_path: Path) -> None:
    """After a crash the outbox hands the records back in other groups: some with new records,
    some in another instance's claim. Each holder sends the journaled batch again, byte for byte,
    and the platform answers it as a replay: nothing is stored twice."""
    batch = records()
    fake.lose_answers(1)
    engine = create_engine_for(f"sqlite:///{tmp_path / 'gw.sqlite'}")
    init_schema(engine)
    first, restarted = adapter_for(fake.url), adapter_for(fake.url)
    first.use_journal(SqlBatchJournal(engine, "national"))
    restarted.use_journal(SqlBatchJournal(engine, "national"))  # the same store, after a restart
    new = OutboundRecord(str(uuid.uuid4()), batch[0].kind, {**batch[0].record}, department="dept")
    new.record["record_id"] = new.record_id
    try:
        lost = await first.deliver(batch)
        mixed = await restarted.deliver([again(batch[1]), new, again(batch[3])])
        await restarted.settled()
        rest = await restarted.deliver([again(batch[0]), again(batch[2])])
        await restarted.settled()
    finally:
        await first.close()
        await restarted.close()
        engine.dispose()
    assert {r.status for r in lost} == {"retry"}
    assert [r.status for r in mixed] == ["delivered"] * 3 and [r.status for r in rest] == ["delivered"] * 2
    assert mixed[0].receipt is not None and mixed[0].receipt["replay"] is True
    assert fake.statuses() == [502, 409, 200, 409]
    assert fake.received[1].batch_id == fake.received[3].batch_id == fake.received[0].batch_id
    assert fake.received[2].record_ids == (new.record_id,)
    assert fake.stored == {r.record_id: 1 for r in [*batch, new]}  # exactly once


async def test_a_batch_answered_for_good_is_forgotten_once_settled(fake: NationalPlatformServer) -> None:
    journal = MemoryJournal()
    adapter = adapter_for(fake.url)
    adapter.use_journal(journal)
    try:
        await adapter.deliver(records())
        kept = journal.recall({r.record_id for r in records()})
        await adapter.settled()
    finally:
        await adapter.close()
    assert [b.record_ids for b in kept] == [tuple(r.record_id for r in records())]
    assert journal.recall({r.record_id for r in records()}) == []


async def test_429_is_a_retry_after_the_platform_s_delay(fake: NationalPlatformServer) -> None:
    fake.rate_limit(1, retry_after_s=7)
    adapter = adapter_for(fake.url)
    try:
        results = await adapter.deliver(records())
        again = await adapter.deliver(records())
    finally:
        await adapter.close()
    assert {(r.status, r.retry_after_s) for r in results} == {("retry", 7.0)}
    assert {r.status for r in again} == {"delivered"}


async def test_503_for_a_while_then_success(fake: NationalPlatformServer) -> None:
    fake.unavailable_for(0.6, retry_after_s=1)
    adapter = adapter_for(fake.url)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    outcomes: list[set[str]] = []
    try:
        while loop.time() < deadline:
            results = await adapter.deliver(records())
            outcomes.append({r.status for r in results})
            if outcomes[-1] == {"delivered"}:
                break
            assert {r.retry_after_s for r in results} == {1.0}
            await asyncio.sleep(0.2)
    finally:
        await adapter.close()
    assert outcomes[0] == {"retry"} and outcomes[-1] == {"delivered"}
    assert 503 in fake.statuses() and fake.statuses()[-1] == 200


async def test_5xx_and_timeouts_are_retries(fake: NationalPlatformServer) -> None:
    fake.fail(1, status=500)
    adapter = adapter_for(fake.url, timeout_s=0.3)
    try:
        failed = await adapter.deliver(records())
        fake.slow(1.0)
        timed_out = await adapter.deliver(records())
    finally:
        await adapter.close()
    assert {r.status for r in failed} == {"retry"}
    assert {r.status for r in timed_out} == {"retry"}
    assert "TimeoutError" in (timed_out[0].message or "")


async def test_a_bad_secret_fails_the_batch_and_a_stale_clock_is_resigned(fake: NationalPlatformServer) -> None:
    wrong = NationalPlatformAdapter(NationalPlatformConfig(base_url=fake.url, app_id=APP_ID,
                                                           app_secret="wrong"))  # type: ignore[arg-type]
    right = adapter_for(fake.url)
    try:
        refused = await wrong.deliver(records())
        fake.refuse_timestamp(1)
        resigned = await right.deliver(records())
    finally:
        await wrong.close()
        await right.close()
    assert {(r.status, r.code) for r in refused} == {("failed", "40100")}
    assert {r.status for r in resigned} == {"delivered"}
    assert fake.statuses() == [401, 401, 200]
