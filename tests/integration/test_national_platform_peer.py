"""The fake national platform itself, by raw signed requests: what its contract says it checks
(``sources/national-platform/README.md``) and the adapter's tests do not reach."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest

from adapters.national_platform.signing import BATCH_PATH, SignatureMethod, signed_headers
from tests.peers.national_platform_server import APP_ID, APP_SECRET, NationalPlatformServer

pytestmark = pytest.mark.integration


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


def body(batch_id: str, *record_ids: str) -> bytes:
    return orjson.dumps({"batch_id": batch_id, "records": [{"record_id": r, "record_kind": "penalty"}
                                                           for r in record_ids]})


async def post(session: aiohttp.ClientSession, server: NationalPlatformServer, raw: bytes, *,
               method: SignatureMethod = "HMAC-SM3", nonce: str | None = None,
               secret: str = APP_SECRET) -> tuple[int, dict[str, Any]]:
    headers = signed_headers(app_id=APP_ID, secret=secret, method=method, body=raw,
                             timestamp_ms=time.time_ns() // 1_000_000, nonce=nonce or f"{time.time_ns():032x}")
    async with session.post(server.url + BATCH_PATH, data=raw,
                            headers={"Content-Type": "application/json; charset=utf-8", **headers}) as response:
        assert response.content_type == "application/json" and response.charset == "utf-8"
        return response.status, orjson.loads(await response.read())


async def test_a_batch_is_answered_per_record_in_request_order(session: aiohttp.ClientSession) -> None:
    async with NationalPlatformServer() as server:
        server.reject("r-2", "10008", "未认领", "supervision_item_code")
        status, answer = await post(session, server, body("zj330000sgw-b1", "r-1", "r-2", "r-3"))
    assert status == 200
    assert (answer["batch_id"], answer["accepted"], answer["rejected"]) == ("zj330000sgw-b1", 2, 1)
    assert [(r["record_id"], r["status"], r["code"]) for r in answer["results"]] == [
        ("r-1", "accepted", "00000"), ("r-2", "rejected", "10008"), ("r-3", "accepted", "00000")]
    assert answer["results"][1]["field"] == "supervision_item_code"
    assert server.stored == {"r-1": 1, "r-3": 1}


async def test_a_replay_is_recognised_whichever_method_signed_it(session: aiohttp.ClientSession) -> None:
    async with NationalPlatformServer() as server:
        raw = body("zj330000sgw-b1", "r-1")
        first = await post(session, server, raw, method="HMAC-SM3")
        again = await post(session, server, raw, method="HMAC-SHA256")
        again_sm3 = await post(session, server, raw)
        other = await post(session, server, body("zj330000sgw-b1", "r-2"), method="HMAC-SHA256")
    assert first[0] == 200 and again[0] == 409 and again_sm3[0] == 409
    assert again[1] == {**first[1], "code": "40900", "message": "batch_id已处理，返回首次处理结果"}
    assert other[0] == 409 and other[1]["code"] == "40901"
    assert server.stored == {"r-1": 1}


async def test_a_nonce_is_refused_again_within_its_window_only(session: aiohttp.ClientSession) -> None:
    async with NationalPlatformServer() as server:
        ok = await post(session, server, body("zj330000sgw-b1", "r-1"), nonce="a" * 32)
        reused = await post(session, server, body("zj330000sgw-b2", "r-2"), nonce="a" * 32)
        bad_signature = await post(session, server, body("zj330000sgw-b3", "r-3"), nonce="b" * 32, secret="wrong")
        after_bad = await post(session, server, body("zj330000sgw-b3", "r-3"), nonce="b" * 32)
    assert (ok[0], reused[0], reused[1]["code"]) == (200, 401, "40102")
    assert bad_signature[1]["code"] == "40100" and after_bad[0] == 200  # a refused request uses no nonce
    async with NationalPlatformServer(nonce_window_s=0) as server:
        assert (await post(session, server, body("zj330000sgw-b1", "r-1"), nonce="c" * 32))[0] == 200
        assert (await post(session, server, body("zj330000sgw-b2", "r-2"), nonce="c" * 32))[0] == 200


async def test_limits_and_the_schema_basics(session: aiohttp.ClientSession) -> None:
    async with NationalPlatformServer(max_records=2, max_bytes=200) as server:
        too_many = await post(session, server, body("zj330000sgw-b1", "r-1", "r-2", "r-3"))
        too_big = await post(session, server, body("zj330000sgw-b2", "x" * 200))
        not_json = await post(session, server, b'{"batch_id": "zj330000sgw-b3", "records": [')
        no_id = await post(session, server, b'{"batch_id": "zj330000sgw-b4", "records": [{"a": 1}]}')
        server.poison("r-9")
        poisoned = await post(session, server, body("zj330000sgw-b5", "r-8", "r-9"))
    assert (too_many[0], too_many[1]["code"], too_big[0]) == (413, "41300", 413)
    assert (not_json[0], not_json[1]["code"], no_id[0]) == (400, "40000", 400)
    assert poisoned[0] == 400 and poisoned[1]["errors"] == [{"path": "$.records[1]", "message": "记录不符合报文结构"}]
    assert server.stored == {}
    assert [r.status for r in server.received] == [413, 413, 400, 400, 400]
