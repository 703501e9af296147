"""The ops view over HTTP on a real socket: /metrics with per-department figures and store gauges,
/readyz with its reasons, /admin/quality scoped by role, /admin/overview for the dashboard."""

from __future__ import annotations

import copy
import json
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import update

from gateway.auth import hash_api_key
from gateway.stores.schema import rejections
from tests.conftest import SAMPLES
from tests.servers import embedded_runtime, serving

pytestmark = pytest.mark.integration

ECO_KEY = "sgw_test_key_quality_eco"
MARKET_KEY = "sgw_test_key_quality_market"
ADMIN = "admin-token-for-ops-view-tests"
VIEWER = "viewer-token-for-ops-view-tests"


def penalties() -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = json.loads(
        (SAMPLES / "eco-rest" / "penalties-page-1.json").read_text(encoding="utf-8"))["items"]
    return items


def series(text: str, name: str) -> dict[frozenset[tuple[str, str]], float]:
    return {frozenset(s.labels.items()): s.value
            for f in text_string_to_metric_families(text) for s in f.samples if s.name == name}


def labels(**values: str) -> frozenset[tuple[str, str]]:
    return frozenset(values.items())


async def test_metrics_readiness_quality_and_overview(tmp_path: Path) -> None:
    runtime = embedded_runtime(
        tmp_path, [{"id": "eco-push", "type": "http_push", "mapping": "eco-rest.penalty", "department": "eco"}],
        departments=[{"code": "eco", "name": "生态环境", "api_key_hashes": [hash_api_key(ECO_KEY)]},
                     {"code": "market", "name": "市场监管", "api_key_hashes": [hash_api_key(MARKET_KEY)]}],
        api={"admin_token": ADMIN, "tokens": [{"name": "watcher", "role": "viewer",
                                               "token_hash": hash_api_key(VIEWER)}]})
    late, timely = penalties()
    timely = copy.deepcopy(timely)
    now = datetime.now(ZoneInfo("Asia/Shanghai"))
    timely["decisionDate"] = now.date().isoformat()  # decided today, reported today
    timely["createdAt"] = timely["updatedAt"] = now.isoformat(timespec="seconds")
    bad = copy.deepcopy(late)
    bad["id"], bad["decisionNo"] = "HJCF-BAD-1", "杭环富罚〔2025〕99号"
    bad["creditCode"] = bad["creditCode"][:-1] + ("0" if bad["creditCode"][-1] != "0" else "1")
    admin, viewer = {"Authorization": f"Bearer {ADMIN}"}, {"Authorization": f"Bearer {VIEWER}"}
    async with serving(runtime) as base, httpx.AsyncClient(base_url=base) as client:
        pushed = await client.post("/ingest/eco-push", json=[late, timely, bad], headers={"X-API-Key": ECO_KEY})
        assert pushed.json()["counts"] == {"accepted": 2, "rejected": 1, "duplicate": 0}, pushed.text
        again = await client.post("/ingest/eco-push", json=late, headers={"X-API-Key": ECO_KEY})
        assert again.json()["counts"]["duplicate"] == 1
        await runtime.drain()
        with runtime.engine.begin() as conn:  # the rejection is past its due date
            conn.execute(update(rejections).values(due_on=datetime(2025, 1, 2).date()))

        metrics = (await client.get("/metrics")).text
        ready = await client.get("/readyz")
        quality = (await client.get("/admin/quality", headers=viewer)).json()
        own = await client.get("/admin/quality/eco", headers={"X-API-Key": ECO_KEY})
        mine_only = (await client.get("/admin/quality", headers={"X-API-Key": ECO_KEY})).json()
        others = await client.get("/admin/quality/market", headers={"X-API-Key": ECO_KEY})
        bad_period = await client.get("/admin/quality?from=2025-02-01&to=2025-01-01", headers=admin)
        overview = (await client.get("/admin/overview", headers=admin)).json()
        overview_by_department = await client.get("/admin/overview", headers={"X-API-Key": ECO_KEY})
        anonymous = await client.get("/admin/overview")

    records = series(metrics, "sgw_records_total")
    eco_push = {"connector": "eco-push", "department": "eco"}
    assert records[labels(**eco_push, kind="penalty", status="accepted")] == 2
    assert records[labels(**eco_push, kind="penalty", status="rejected")] == 1
    assert records[labels(**eco_push, kind="penalty", status="duplicate")] == 1
    assert series(metrics, "sgw_record_errors_total") == {labels(**eco_push, code="RULE"): 1}
    assert series(metrics, "sgw_deliveries_total") == {
        labels(adapter="data-centre", department="eco", kind="penalty", status="delivered"): 2}
    assert series(metrics, "sgw_delivery_latency_seconds_count") == {labels(adapter="data-centre"): 2}
    assert series(metrics, "sgw_outbox_depth") == {labels(adapter="data-centre"): 0}
    assert series(metrics, "sgw_rejections_open") == {labels(department="eco"): 1}
    assert series(metrics, "sgw_rejections_overdue") == {labels(department="eco"): 1}
    assert series(metrics, "sgw_adapter_circuit_open") == {labels(adapter="data-centre"): 0}
    assert series(metrics, "sgw_connector_up") == {labels(connector="eco-push"): 1}

    assert ready.status_code == 200
    assert ready.json() == {"ready": True, "status": "ok", "checks": {
        "database": {"ok": True}, "broker": {"ok": True, "connectors": {}},
        "targets": {"ok": True, "circuits": {"data-centre": "closed"}}}}

    by_department = {q["department"]: q for q in quality["departments"]}
    assert set(by_department) == {"eco", "market"}
    eco = by_department["eco"]
    assert (eco["accepted"], eco["rejected"], eco["duplicates"]) == (2, 1, 1)
    assert eco["validity_rate"] == round(2 / 3, 4)
    assert eco["timeliness"] == {"timely": 1, "late": 1, "rate": 0.5, "deadline_working_days": 7}
    assert eco["overdue_rejections"] == 1 and eco["open_rejections"] == 1
    assert [r["code"] for r in eco["rejection_reasons"]] == ["RULE:CPT-001"]
    assert by_department["market"]["accepted"] == 0

    assert own.status_code == 200 and [q["department"] for q in own.json()["departments"]] == ["eco"]
    assert [q["department"] for q in mine_only["departments"]] == ["eco"]
    assert others.status_code == 403 and others.json()["detail"]["code"] == "FORBIDDEN_DEPARTMENT"
    assert bad_period.status_code == 422

    connector = next(c for c in overview["connectors"] if c["id"] == "eco-push")
    assert connector["per_minute"] == 4 and connector["accepted"] == 2 and connector["state"] == "up"
    target = next(t for t in overview["targets"] if t["id"] == "data-centre")
    assert target["circuit"] == "closed" and target["delivered"] == 2 and target["outbox_depth"] == 0
    department = next(d for d in overview["departments"] if d["department"] == "eco")
    assert department["overdue_rejections"] == 1 and department["quality"]["accepted"] == 2
    assert overview["dead_letters"] == [] and overview["readiness"]["ready"] is True
    assert overview_by_department.status_code == 403 and anonymous.status_code == 401
