"""The 12345 webhook over a real socket: a platform client that signs like 12345, ending in ex_complaint."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from gateway.auth import hash_api_key
from gateway.runtime import Runtime
from tests.conftest import SAMPLES
from tests.peers.hotline12345_client import TEST_SECRET, Hotline12345Client, split_http
from tests.servers import embedded_runtime, serving

pytestmark = pytest.mark.integration

HERE = SAMPLES / "hotline-12345"
KEY = "sgw_test_key_department_a"


def make_runtime(tmp_path: Path) -> Runtime:
    return embedded_runtime(tmp_path, [
        {"id": "hotline-12345", "type": "hotline12345", "mapping": "hotline-12345.workorder",
         "department": "hz-12345", "options": {"secret": TEST_SECRET, "department": "hz-12345"}},
        {"id": "eco-push", "type": "http_push", "mapping": "eco-rest.penalty", "department": "hz-12345"},
    ], departments=[{"code": "hz-12345", "name": "杭州市12345", "api_key_hashes": [hash_api_key(KEY)]}])


@asynccontextmanager
async def platform(runtime: Runtime) -> AsyncIterator[Hotline12345Client]:
    async with serving(runtime) as base, httpx.AsyncClient(base_url=base) as client:
        yield Hotline12345Client(client)


def order(name: str, **changes: Any) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((HERE / name).read_text(encoding="utf-8"))
    return {**loaded, **changes}


def complaints(tmp_path: Path) -> list[tuple[Any, ...]]:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'dc.sqlite'}")
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(
                "SELECT source_ticket_no, request_type, cd_operation, channel, connector FROM ex_complaint"
                " ORDER BY source_ticket_no, cd_time")).all()]
    except sa.exc.OperationalError:  # no table yet: nothing was delivered
        return []
    finally:
        engine.dispose()


def hotline(runtime: Runtime) -> Any:
    return runtime.assembly.connectors["hotline-12345"]


async def test_signed_complaint_and_report_end_in_ex_complaint(tmp_path: Path) -> None:
    runtime = make_runtime(tmp_path)
    async with platform(runtime) as twelve:
        first = await twelve.push(order("push-complaint.body.json"))
        second = await twelve.push(order("push-report.body.json"))
        for answer, gdbh in ((first, "GD20250601004512"), (second, "GD20250609011873")):
            assert answer.status_code == 202, answer.text
            assert answer.headers["content-type"] == "application/json; charset=utf-8"
            body = answer.json()
            assert {k: body[k] for k in ("code", "message", "gdbh", "status")} == {
                "code": "0000", "message": "已接收", "gdbh": gdbh, "status": "accepted"}
        await runtime.drain()
    assert complaints(tmp_path) == [("GD20250601004512", "投诉", "i", "12345", "hotline-12345"),
                                    ("GD20250609011873", "举报", "i", "12345", "hotline-12345")]
    assert hotline(runtime).counters() == {"accepted": 2}


async def test_the_recorded_bad_signature_gets_the_recorded_401_is_counted_and_not_ingested(tmp_path: Path) -> None:
    runtime = make_runtime(tmp_path)
    expected = split_http((HERE / "response-401-bad-signature.http").read_bytes())
    async with platform(runtime) as twelve:
        answer = await twelve.send_raw((HERE / "push-bad-signature.http").read_bytes())
        assert answer.status_code == 401
        assert answer.content == expected[2]
        assert answer.headers["content-type"] == expected[1]["Content-Type"]
        wrong = await twelve.push(order("push-complaint.body.json"), secret="not-the-shared-secret")
        assert wrong.status_code == 401 and wrong.json()["code"] == "4011"
    assert hotline(runtime).counters() == {"bad_signature": 2}
    assert runtime.store.totals() == {"accepted": 0, "rejected": 0, "duplicate": 0}


async def test_stale_timestamps_are_refused_and_a_replay_gets_its_answer(tmp_path: Path) -> None:
    runtime = make_runtime(tmp_path)
    async with platform(runtime) as twelve:
        recorded = await twelve.send_raw((HERE / "push-complaint.http").read_bytes())  # signed in 2025
        assert recorded.status_code == 401 and recorded.json()["code"] == "4012"
        stale = await twelve.push(order("push-report.body.json"), timestamp=int(time.time()) - 301)
        assert stale.status_code == 401 and stale.json() == {"code": "4012", "message": "时间戳超出允许范围",
                                                               "gdbh": None}
        body = json.dumps(order("push-report.body.json"), ensure_ascii=False).encode("utf-8")
        now = str(int(time.time()))
        first = await twelve.push_bytes(body, delivery_id="d-1", timestamp=now)
        assert first.status_code == 202
        replay = await twelve.push_bytes(body, delivery_id="d-1", timestamp=now)  # the same bytes, same signature
        assert replay.status_code == 202 and replay.json() == first.json()
        await runtime.drain()
    assert hotline(runtime).counters() == {"stale_timestamp": 2, "accepted": 1, "replay": 1}
    assert len(complaints(tmp_path)) == 1


async def test_a_retried_work_order_gets_the_same_answer_and_one_row(tmp_path: Path) -> None:
    runtime = make_runtime(tmp_path)
    async with platform(runtime) as twelve:
        first = await twelve.push(order("push-complaint.body.json"), delivery_id="retry-me")
        retry = await twelve.push(order("push-complaint.body.json"), delivery_id="retry-me",
                                  timestamp=int(time.time()) + 1)
        assert first.status_code == retry.status_code == 202
        assert retry.content == first.content
        await runtime.drain()
    assert len(complaints(tmp_path)) == 1
    assert runtime.store.totals()["accepted"] == 1
    assert hotline(runtime).counters() == {"accepted": 1, "repeat_answered": 1}


async def test_an_urge_then_a_withdrawal_update_and_delete_the_order(tmp_path: Path) -> None:
    runtime = make_runtime(tmp_path)
    async with platform(runtime) as twelve:
        for tslx in ("1", "2", "3"):
            answer = await twelve.push(order("push-complaint.body.json", tslx=tslx,
                                             sqnr=f"第{tslx}次推送：餐具有明显污渍。"))
            assert answer.status_code == 202 and answer.json()["status"] == "accepted", answer.text
            await runtime.drain()
    assert [row[2] for row in complaints(tmp_path)] == ["i", "u", "d"]


async def test_praise_is_accepted_and_dropped(tmp_path: Path) -> None:
    runtime = make_runtime(tmp_path)
    async with platform(runtime) as twelve:
        answer = await twelve.push(order("push-complaint.body.json", sqlx="6", gdbh="GD20250601004599"))
        assert answer.status_code == 202
        assert answer.json()["status"] == "accepted" and answer.json()["gdbh"] == "GD20250601004599"
        await runtime.drain()
    assert hotline(runtime).counters() == {"praise_dropped": 1}
    assert runtime.store.totals() == {"accepted": 0, "rejected": 0, "duplicate": 0}
    assert complaints(tmp_path) == []


async def test_a_body_that_is_not_a_work_order_is_400_and_the_api_key_route_still_answers(tmp_path: Path) -> None:
    runtime = make_runtime(tmp_path)
    async with platform(runtime) as twelve:
        no_gdbh = await twelve.push_bytes(b'{"tslx":"1"}', delivery_id="d-2", timestamp=str(int(time.time())))
        assert no_gdbh.status_code == 400 and no_gdbh.json()["code"] == "4000"
        keyed = await twelve.client.post("/ingest/eco-push", content=b"{}", headers={
            "Content-Type": "application/json"})
        assert keyed.status_code == 401 and keyed.json()["detail"]["code"] == "AUTH_MISSING"
        unknown = await twelve.client.post("/ingest/nobody", content=b"{}", headers={
            "Content-Type": "application/json", "X-API-Key": KEY})
        assert unknown.status_code == 404
    assert hotline(runtime).counters() == {"malformed": 1}
