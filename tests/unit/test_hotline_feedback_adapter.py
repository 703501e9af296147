"""12345 feedback: the sample request byte for byte, and the answers over a small local server."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from adapters.base import OutboundRecord
from adapters.hotline12345_feedback import (
    Hotline12345FeedbackAdapter,
    Hotline12345FeedbackConfig,
    encode,
    feedback_body,
    sign,
)
from tests.conftest import SAMPLES, free_port

SECRET = "sgw-feedback-test-secret-2025"
RESULT = ("经查，反映情况属实。执法人员于2025年6月2日对该单位进行现场检查，责令其立即整改，并已立案调查"
          "（杭西市监立〔2025〕211号）。已电话告知诉求人。")


def complaint(**changes: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "record_kind": "complaint", "operation": "u", "channel": "12345", "source_ticket_no": "GD20250601004512",
        "source_record_id": "GD20250601004512", "handling_org_name": "杭州市西湖区示例市场监督管理局",
        "handling_org_uscc": "11330106002500121C", "result_text": RESULT, "closed_at": "2025-06-12T16:20:00+08:00",
        "converted_to_case": True,
    }
    record.update(changes)
    return record


def test_the_sample_feedback_request_is_reproduced_byte_for_byte() -> None:
    raw = (SAMPLES / "hotline-12345" / "feedback-request.http").read_bytes()
    head, _, body = raw.partition(b"\r\n\r\n")
    headers = dict(line.split(": ", 1) for line in head.decode().split("\r\n")[1:])
    ours = encode(feedback_body(complaint(), "王示例", "0571-87000000") or {})
    assert ours == body
    assert sign(SECRET, headers["X-12345-Timestamp"], ours) == headers["X-12345-Signature"]


def test_what_is_fed_back() -> None:
    staged = feedback_body(complaint(closed_at=None))
    assert staged is not None and staged["fklx"] == "5" and "clsj" not in staged
    assert feedback_body(complaint(closed_at="2025-06-12"))["clsj"] == "2025-06-12 00:00:00"  # type: ignore[index]
    assert feedback_body(complaint(channel="12315")) is None
    assert feedback_body(complaint(result_text=None)) is None
    assert feedback_body(complaint(operation="d")) is None


class Fake:
    def __init__(self) -> None:
        self.answers: dict[str, tuple[int, dict[str, Any], dict[str, str]]] = {}
        self.seen: list[tuple[str, dict[str, Any], bool]] = []

    async def handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        ok = sign(SECRET, request.headers["X-12345-Timestamp"], raw) == request.headers["X-12345-Signature"]
        gdbh = request.match_info["gdbh"]
        self.seen.append((gdbh, json.loads(raw), ok))
        if not ok:
            return web.json_response({"code": "4011", "msg": "签名校验失败"}, status=401)
        status, body, headers = self.answers.get(gdbh, (200, {"code": "0", "msg": "成功",
                                                              "data": {"gdbh": gdbh, "gdzt": "5"}}, {}))
        return web.json_response(body, status=status, headers=headers)


@pytest.fixture
async def hotline() -> AsyncIterator[tuple[str, Fake]]:
    fake = Fake()
    app = web.Application()
    app.router.add_post("/api/workorders/{gdbh}/feedback", fake.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}", fake
    finally:
        await runner.cleanup()


async def test_answers_become_delivery_results(hotline: tuple[str, Fake]) -> None:
    url, fake = hotline
    fake.answers["GD20250601000404"] = (404, {"code": "1004", "msg": "工单不存在"}, {})
    fake.answers["GD20250601000409"] = (409, {"code": "1009", "msg": "工单已办结，不能重复反馈办结结果"}, {})
    fake.answers["GD20250601000429"] = (429, {"code": "429"}, {"Retry-After": "30"})
    adapter = Hotline12345FeedbackAdapter(Hotline12345FeedbackConfig(base_url=url, secret=SECRET))  # type: ignore[arg-type]
    batch = [OutboundRecord(f"r{i}", "complaint", complaint(source_ticket_no=gdbh)) for i, gdbh in enumerate(
        ["GD20250601004512", "GD20250601000404", "GD20250601000409", "GD20250601000429"])]
    batch.append(OutboundRecord("r4", "complaint", complaint(source_ticket_no="GD20250601000500", closed_at=None,
                                                             result_text="已联系当事人")))
    batch.append(OutboundRecord("r5", "complaint", complaint(result_text="已处理")))
    batch.append(OutboundRecord("r6", "complaint", complaint(channel="12315")))
    try:
        results = await adapter.deliver(batch)
    finally:
        await adapter.close()
    assert [(r.status, r.code) for r in results] == [
        ("delivered", "0"), ("rejected", "1004"), ("delivered", "1009"), ("retry", "429"), ("delivered", "0"),
        ("rejected", "CLJG_TOO_SHORT"), ("delivered", "NO_FEEDBACK")]
    assert results[0].receipt == {"gdbh": "GD20250601004512", "fklx": "2", "gdzt": "5"}
    assert results[3].retry_after_s == 30.0
    assert all(ok for _, _, ok in fake.seen) and len(fake.seen) == 5
    assert fake.seen[4][1]["fklx"] == "5"


async def test_a_wrong_secret_fails(hotline: tuple[str, Fake]) -> None:
    url, _ = hotline
    adapter = Hotline12345FeedbackAdapter(Hotline12345FeedbackConfig(base_url=url, secret="nope"))  # type: ignore[arg-type]
    try:
        [result] = await adapter.deliver([OutboundRecord("r", "complaint", complaint())])
    finally:
        await adapter.close()
    assert (result.status, result.code) == ("failed", "4011")


async def test_an_unreachable_hotline_is_a_retry() -> None:
    adapter = Hotline12345FeedbackAdapter(Hotline12345FeedbackConfig(
        base_url=f"http://127.0.0.1:{free_port()}", secret=SECRET))  # type: ignore[arg-type]
    try:
        [result] = await adapter.deliver([OutboundRecord("r", "complaint", complaint())])
    finally:
        await adapter.close()
    assert result.status == "retry"
