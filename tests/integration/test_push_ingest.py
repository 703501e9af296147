"""Push ingest over a real socket: department keys, outcomes per record, hostile bodies, delivery."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from gateway.auth import hash_api_key
from gateway.runtime import Runtime
from tests.conftest import SAMPLES
from tests.servers import embedded_runtime, serving

pytestmark = pytest.mark.integration

KEY_A = "sgw_test_key_department_a"
KEY_B = "sgw_test_key_department_b"


def make_runtime(tmp_path: Path, max_body_bytes: int = 65536) -> Runtime:
    return embedded_runtime(
        tmp_path, [{"id": "eco-push", "type": "http_push", "mapping": "eco-rest.penalty", "department": "eco-a"}],
        api={"max_body_bytes": max_body_bytes, "max_records_per_request": 5},
        departments=[
            {"code": "eco-a", "name": "生态环境甲", "api_key_hashes": [hash_api_key(KEY_A)]},
            {"code": "eco-b", "name": "生态环境乙", "api_key_hashes": [hash_api_key(KEY_B)]},
        ])


def eco_items() -> list[dict[str, Any]]:
    page = json.loads((SAMPLES / "eco-rest" / "penalties-page-1.json").read_text(encoding="utf-8"))
    items: list[dict[str, Any]] = page["items"]
    return items


async def test_records_pushed_by_a_department_are_answered_one_by_one_and_reach_the_data_centre(tmp_path: Path) -> None:
    runtime = make_runtime(tmp_path)
    good = eco_items()[0]
    bad = copy.deepcopy(eco_items()[1])
    bad["creditCode"] = bad["creditCode"][:-1] + ("0" if bad["creditCode"][-1] != "0" else "1")
    async with serving(runtime) as base, httpx.AsyncClient(base_url=base) as client:
        answer = await client.post("/ingest/eco-push", json=[good, bad], headers={"X-API-Key": KEY_A})
        assert answer.status_code == 202, answer.text
        body = answer.json()
        assert body["counts"] == {"accepted": 1, "rejected": 1, "duplicate": 0}
        accepted, rejected = body["outcomes"]
        assert accepted["status"] == "accepted" and accepted["record_id"]
        errors = {(e["code"], e["field"]) for e in rejected["errors"]}
        assert ("RULE:CPT-001", "counterparty_id_no") in errors  # a counterparty USCC is checked by CPT-001
        where = next(e for e in rejected["errors"] if e["field"] == "counterparty_id_no")
        assert where["location"] == "$[1].creditCode"
        assert where["message_zh"] and where["message_en"]

        again = await client.post("/ingest/eco-push", json=good, headers={"X-API-Key": KEY_A})
        assert again.json()["counts"] == {"accepted": 0, "rejected": 0, "duplicate": 1}

        await runtime.drain()
        metrics = (await client.get("/metrics")).text
        families = {f.name for f in text_string_to_metric_families(metrics)}
        assert "sgw_records" in families
        assert (await client.get("/readyz")).json()["ready"] is True

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'dc.sqlite'}")
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT cd_id, cd_operation FROM ex_penalty")).all()
    engine.dispose()
    assert [r[0] for r in rows] == [accepted["record_id"]]
    assert runtime.store.rejections.count(status="open") == 1


@pytest.mark.parametrize(
    ("headers", "body", "status", "code"),
    [
        ({}, b"{}", 401, "AUTH_MISSING"),
        ({"X-API-Key": "wrong"}, b"{}", 401, "AUTH_INVALID"),
        ({"X-API-Key": KEY_B}, b"{}", 403, "FORBIDDEN"),
        ({"X-API-Key": KEY_A, "Content-Type": "text/plain"}, b"{}", 415, "UNSUPPORTED_MEDIA_TYPE"),
        ({"X-API-Key": KEY_A}, b'{"a": ', 400, "MALFORMED"),
        ({"X-API-Key": KEY_A}, b"[1, 2]", 422, "NOT_RECORDS"),
        ({"X-API-Key": KEY_A}, b"[]", 422, "NOT_RECORDS"),
        ({"X-API-Key": KEY_A}, b"[" + b"{}," * 5 + b"{}]", 413, "TOO_MANY_RECORDS"),
        ({"X-API-Key": KEY_A}, b"[" * 100_000 + b"]" * 100_000, 413, "PAYLOAD_TOO_LARGE"),
        ({"X-API-Key": KEY_A}, b'{"a":' * 5000 + b"1" + b"}" * 5000, 400, "MALFORMED"),
    ],
)
async def test_bad_requests_get_a_clear_4xx_and_nothing_is_ingested(
    tmp_path: Path, headers: dict[str, str], body: bytes, status: int, code: str
) -> None:
    runtime = make_runtime(tmp_path)
    async with serving(runtime) as base, httpx.AsyncClient(base_url=base) as client:
        answer = await client.post("/ingest/eco-push", content=body,
                                   headers={"Content-Type": "application/json", **headers})
        assert answer.status_code == status, answer.text
        assert answer.json()["detail"]["code"] == code
        assert (await client.get("/healthz")).status_code == 200
    assert runtime.store.totals() == {"accepted": 0, "rejected": 0, "duplicate": 0}


async def test_a_body_streamed_past_the_limit_is_refused(tmp_path: Path) -> None:
    runtime = make_runtime(tmp_path, max_body_bytes=2048)

    async def chunks() -> Any:
        for _ in range(100):
            yield b" " * 1024

    async with serving(runtime) as base, httpx.AsyncClient(base_url=base) as client:
        answer = await client.post("/ingest/eco-push", content=chunks(),
                                   headers={"Content-Type": "application/json", "X-API-Key": KEY_A})
        assert answer.status_code == 413


async def test_openapi_documents_the_push_route(tmp_path: Path) -> None:
    async with serving(make_runtime(tmp_path)) as base, httpx.AsyncClient(base_url=base) as client:
        assert (await client.get("/docs")).status_code == 200
        spec = (await client.get("/openapi.json")).json()
    assert "/ingest/{connector}" in spec["paths"] and "/healthz" in spec["paths"]
