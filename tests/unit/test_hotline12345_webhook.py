"""The 12345 webhook connector against the contract's recorded samples, with a fixed clock."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from pydantic import ValidationError

from connectors.base import ConnectorContext, MemoryState, PublishReceipt, RecordReceipt
from connectors.hotline12345 import Hotline12345Connector, ReplayCache, sign
from gateway.envelope import Envelope
from gateway.errors import StoreUnavailable
from tests.conftest import SAMPLES
from tests.peers.hotline12345_client import TEST_SECRET, order_body, platform_signature, split_http

HERE = SAMPLES / "hotline-12345"
COMPLAINT_TS = 1748742005
REPORT_TS = 1749515714


def sample(name: str) -> tuple[dict[str, str], bytes]:
    _start, headers, body = split_http((HERE / name).read_bytes())
    return headers, body


def sample_answer(name: str) -> tuple[int, bytes]:
    start, _headers, body = split_http((HERE / name).read_bytes())
    return int(start.split()[1]), body


class FakePublish:
    """Records envelopes; answers as ingest would, or fails like a store that is down."""

    def __init__(self, status: str = "accepted") -> None:
        self.envelopes: list[Envelope] = []
        self.status = status
        self.fail = False

    async def __call__(self, envelope: Envelope) -> PublishReceipt:
        if self.fail:
            raise StoreUnavailable("database down")
        self.envelopes.append(envelope)
        counts = {"accepted": 0, "rejected": 0, "duplicate": 0, self.status: 1}
        record = RecordReceipt(index=0, status=self.status, record_id="r1", source_record_id=envelope.payload["gdbh"])
        return PublishReceipt(envelope_id=envelope.envelope_id, records=(record,), **counts)


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def connector(clock: Clock, state: MemoryState | None = None, **options: Any) -> Hotline12345Connector:
    config = Hotline12345Connector.Config.model_validate({"secret": TEST_SECRET, "department": "hz-12345",
                                                          **options})
    return Hotline12345Connector("hotline-12345", config, ConnectorContext(state=state or MemoryState()),
                                 clock=clock)


def signed(order: dict[str, Any], timestamp: int, delivery: str, secret: str = TEST_SECRET) -> tuple[dict[str, str],
                                                                                                      bytes]:
    body = order_body(order)
    return {"X-12345-App-Id": "hz12345", "X-12345-Timestamp": str(timestamp), "X-12345-Delivery-Id": delivery,
            "X-12345-Signature": platform_signature(secret, str(timestamp), body)}, body


def complaint() -> dict[str, Any]:
    order: dict[str, Any] = json.loads((HERE / "push-complaint.body.json").read_text(encoding="utf-8"))
    return order


def test_the_reference_signature_reproduces_the_recorded_samples() -> None:
    for name in ("push-complaint.http", "push-report.http"):
        headers, body = sample(name)
        assert sign(TEST_SECRET, headers["X-12345-Timestamp"], body) == headers["X-12345-Signature"]


async def test_a_recorded_complaint_is_verified_published_and_answered_202() -> None:
    publish = FakePublish()
    hook = connector(Clock(COMPLAINT_TS + 1))
    status, body = await hook.receive_push(*sample("push-complaint.http"), publish)
    assert status == 202
    answer = json.loads(body)
    _, recorded = sample_answer("response-202-accepted.http")
    assert list(answer) == list(json.loads(recorded))
    assert answer["code"] == "0000" and answer["message"] == "已接收" and answer["status"] == "accepted"
    assert answer["gdbh"] == "GD20250601004512" and answer["receiptId"].startswith("sgw-rcpt-20250601-")
    [envelope] = publish.envelopes
    assert envelope.meta["timestamp"] == str(COMPLAINT_TS)
    assert envelope.meta["delivery_id"] == "5b0e7c3a-0f4d-4d7e-9a31-2c8f1e6b9d02"
    assert envelope.raw == sample("push-complaint.http")[1] and envelope.records_inline
    assert envelope.department == "hz-12345" and envelope.payload["sqlx"] == "3"
    assert answer["receiptId"].endswith(envelope.envelope_id)
    assert hook.counters() == {"accepted": 1}


async def test_a_bad_signature_gets_the_contracts_401_byte_for_byte_and_nothing_is_published() -> None:
    publish = FakePublish()
    hook = connector(Clock(COMPLAINT_TS))
    status, body = await hook.receive_push(*sample("push-bad-signature.http"), publish)
    assert (status, body) == sample_answer("response-401-bad-signature.http")
    assert publish.envelopes == [] and hook.counters() == {"bad_signature": 1}


@pytest.mark.parametrize("change", [
    {"X-12345-Signature": ""}, {"X-12345-App-Id": "someone-else"}, {"X-12345-Timestamp": "1748742006"},
    {"X-12345-Signature": "437779D2A5A63873F78E7CAE751971639EDC6A07287E87DF6771A00C3FA29370"},
    {"X-12345-Timestamp": "时间"},
])
async def test_any_header_that_breaks_the_signature_is_401_4011(change: dict[str, str]) -> None:
    headers, body = sample("push-complaint.http")
    publish = FakePublish()
    status, answer = await connector(Clock(COMPLAINT_TS)).receive_push({**headers, **change}, body, publish)
    assert status == 401 and json.loads(answer)["code"] == "4011" and publish.envelopes == []


async def test_a_changed_body_byte_breaks_the_signature() -> None:
    headers, body = sample("push-complaint.http")
    status, _ = await connector(Clock(COMPLAINT_TS)).receive_push(headers, body.replace(b'"jjcd":"1"', b'"jjcd":"2"'),
                                                                  FakePublish())
    assert status == 401


@pytest.mark.parametrize(("offset_s", "status"), [(300, 202), (-300, 202), (301, 401), (-301, 401)])
async def test_the_timestamp_window_is_300_seconds_either_way(offset_s: int, status: int) -> None:
    publish = FakePublish()
    hook = connector(Clock(COMPLAINT_TS + offset_s))
    got, body = await hook.receive_push(*sample("push-complaint.http"), publish)
    assert got == status
    if status == 401:
        assert json.loads(body) == {"code": "4012", "message": "时间戳超出允许范围", "gdbh": None}
        assert publish.envelopes == [] and hook.counters() == {"stale_timestamp": 1}


async def test_the_very_request_again_gets_its_answer_without_a_second_ingest() -> None:
    # 12345 dedupes on (gdbh, tslx, Delivery-Id) and stops with an alert on a 401: a push re-sent
    # unchanged (same timestamp, same signature) within the window gets the answer it was given.
    publish = FakePublish()
    hook = connector(Clock(COMPLAINT_TS))
    first = await hook.receive_push(*sample("push-complaint.http"), publish)
    assert first[0] == 202
    assert await hook.receive_push(*sample("push-complaint.http"), publish) == first
    assert len(publish.envelopes) == 1 and hook.counters() == {"accepted": 1, "replay": 1}


async def test_the_very_request_again_once_its_answer_is_forgotten_is_refused_as_a_replay() -> None:
    publish, clock = FakePublish(), Clock(COMPLAINT_TS)
    hook = connector(clock, answer_ttl_s=60)
    assert (await hook.receive_push(*sample("push-complaint.http"), publish))[0] == 202
    clock.now += 61  # the answer is gone, the signature's timestamp still inside the window
    status, body = await hook.receive_push(*sample("push-complaint.http"), publish)
    assert status == 401 and json.loads(body)["code"] == "4013"
    assert len(publish.envelopes) == 1 and hook.counters() == {"accepted": 1, "replay": 1}


async def test_a_platform_retry_gets_the_same_answer_without_a_second_ingest() -> None:
    publish = FakePublish()
    clock = Clock(COMPLAINT_TS)
    hook = connector(clock)
    first = await hook.receive_push(*sample("push-complaint.http"), publish)
    clock.now += 60  # the platform re-signs its retry a minute later, same delivery id
    retry = await hook.receive_push(*signed(complaint(), int(clock.now), "5b0e7c3a-0f4d-4d7e-9a31-2c8f1e6b9d02"),
                                    publish)
    assert retry == first and len(publish.envelopes) == 1
    assert hook.counters() == {"accepted": 1, "repeat_answered": 1}


async def test_a_later_push_of_the_same_order_is_ingested_again() -> None:
    publish = FakePublish()
    hook = connector(Clock(COMPLAINT_TS))
    await hook.receive_push(*sample("push-complaint.http"), publish)
    urge = {**complaint(), "tslx": "2"}
    status, _ = await hook.receive_push(*signed(urge, COMPLAINT_TS, "another-delivery"), publish)
    assert status == 202 and [e.payload["tslx"] for e in publish.envelopes] == ["1", "2"]


async def test_praise_is_acknowledged_dropped_and_counted() -> None:
    publish = FakePublish()
    hook = connector(Clock(COMPLAINT_TS))
    headers, body = signed({**complaint(), "sqlx": "6"}, COMPLAINT_TS, "praise-1")
    status, answer = await hook.receive_push(headers, body, publish)
    assert status == 202 and json.loads(answer)["status"] == "accepted"
    again = await hook.receive_push(*signed({**complaint(), "sqlx": "6"}, COMPLAINT_TS + 5, "praise-1"), publish)
    assert again == (status, answer)
    assert publish.envelopes == [] and hook.counters() == {"praise_dropped": 1, "repeat_answered": 1}


async def test_a_mapping_rejection_is_still_202_with_status_rejected() -> None:
    status, body = await connector(Clock(COMPLAINT_TS)).receive_push(*sample("push-complaint.http"),
                                                                     FakePublish("rejected"))
    assert status == 202 and json.loads(body)["status"] == "rejected"


@pytest.mark.parametrize(("body", "delivery"), [
    (b"not json", "d1"), (b"[1, 2]", "d1"), (b'{"tslx": "1"}', "d1"), (b'{"gdbh": ""}', "d1"),
    (order_body(complaint()), ""),
])
async def test_a_signed_body_that_is_not_a_work_order_is_400_4000(body: bytes, delivery: str) -> None:
    headers = {"X-12345-App-Id": "hz12345", "X-12345-Timestamp": str(COMPLAINT_TS), "X-12345-Delivery-Id": delivery,
               "X-12345-Signature": platform_signature(TEST_SECRET, str(COMPLAINT_TS), body)}
    publish = FakePublish()
    hook = connector(Clock(COMPLAINT_TS))
    status, answer = await hook.receive_push(headers, body, publish)
    assert status == 400 and json.loads(answer)["code"] == "4000"
    assert publish.envelopes == [] and hook.counters() == {"malformed": 1}


async def test_when_the_store_is_down_the_push_is_503_and_its_resend_is_not_a_replay() -> None:
    publish = FakePublish()
    publish.fail = True
    hook = connector(Clock(COMPLAINT_TS))
    status, body = await hook.receive_push(*sample("push-complaint.http"), publish)
    assert status == 503 and json.loads(body)["code"] == "5030"
    publish.fail = False
    assert (await hook.receive_push(*sample("push-complaint.http"), publish))[0] == 202
    assert len(publish.envelopes) == 1


async def test_replays_and_answers_survive_a_restart_through_the_durable_state() -> None:
    state, publish = MemoryState(), FakePublish()
    first = await connector(Clock(COMPLAINT_TS), state).receive_push(*sample("push-complaint.http"), publish)
    restarted = connector(Clock(COMPLAINT_TS + 30), state)
    replay = await restarted.receive_push(*sample("push-complaint.http"), publish)
    retry = await restarted.receive_push(*signed(complaint(), COMPLAINT_TS + 30,
                                                 "5b0e7c3a-0f4d-4d7e-9a31-2c8f1e6b9d02"), publish)
    assert replay == retry == first and len(publish.envelopes) == 1
    assert restarted.counters() == {"replay": 1, "repeat_answered": 1}


async def test_answers_are_forgotten_after_their_ttl() -> None:
    clock, publish = Clock(COMPLAINT_TS), FakePublish()
    hook = connector(clock, answer_ttl_s=3600)
    await hook.receive_push(*sample("push-complaint.http"), publish)
    clock.now += 3601
    await hook.receive_push(*signed(complaint(), int(clock.now), "5b0e7c3a-0f4d-4d7e-9a31-2c8f1e6b9d02"), publish)
    assert len(publish.envelopes) == 2


async def test_the_replay_cache_drops_buckets_past_the_window() -> None:
    state = MemoryState()
    cache = ReplayCache(state, window_s=300, ttl_s=600)
    await cache.remember("a", 1_000_000, now=1_000_000)
    assert await cache.seen("a", 1_000_000) and not await cache.seen("a", 1_000_400)
    await cache.remember("b", 1_000_000 + 5000, now=1_000_000 + 5000)
    assert not await cache.seen("a", 1_000_000)
    assert set(state.values) == {"seen-buckets", f"seen:{(1_000_000 + 5000) // 300}"}


@pytest.mark.parametrize("options", [
    {"secret": "short"}, {"secret": TEST_SECRET, "window_s": 300, "replay_ttl_s": 100},
    {"secret": TEST_SECRET, "nonce": True}, {},
])
def test_insecure_or_unknown_options_are_refused(options: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        Hotline12345Connector.Config.model_validate(options)


def test_the_secret_is_never_printed() -> None:
    config = Hotline12345Connector.Config.model_validate({"secret": TEST_SECRET})
    assert TEST_SECRET not in repr(config) and TEST_SECRET not in str(config.model_dump())



class RecordingTelemetry:
    """What the connector reports, as the runtime's telemetry would receive it."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.states: list[str] = []
        self.errors: list[str] = []

    def count(self, name: str, n: int = 1) -> None:
        self.counts[name] = self.counts.get(name, 0) + n

    def gauge(self, name: str, value: float, key: str | None = None) -> None:
        raise AssertionError("the webhook reports no levels")

    def state(self, state: str, detail: str | None = None) -> None:
        self.states.append(state)

    def error(self, message: str) -> None:
        self.errors.append(message)


async def test_outcomes_are_reported_through_the_connector_telemetry() -> None:
    telemetry = RecordingTelemetry()
    config = Hotline12345Connector.Config.model_validate({"secret": TEST_SECRET})
    clock = Clock(COMPLAINT_TS)
    hook = Hotline12345Connector("hotline-12345", config, ConnectorContext(telemetry=telemetry), clock=clock)
    publish = FakePublish()
    assert (await hook.receive_push(*sample("push-complaint.http"), publish))[0] == 202
    assert (await hook.receive_push(*sample("push-complaint.http"), publish))[0] == 202  # replay: its answer
    assert (await hook.receive_push(*sample("push-bad-signature.http"), publish))[0] == 401
    clock.now += 301
    assert (await hook.receive_push(*sample("push-complaint.http"), publish))[0] == 401  # stale
    publish.fail = True
    assert (await hook.receive_push(*signed(complaint(), int(clock.now), "d-2"), publish))[0] == 503
    expected = {"accepted": 1, "replay": 1, "bad_signature": 1, "stale_timestamp": 1, "store_unavailable": 1}
    assert telemetry.counts == hook.counters() == expected
    assert telemetry.errors == ["store unavailable: StoreUnavailable"]
    run = asyncio.create_task(hook.run(publish))
    await asyncio.sleep(0)
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    assert telemetry.states == ["running", "stopped"]
