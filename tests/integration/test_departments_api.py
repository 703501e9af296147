"""Departments, keys, a department's own view and the audit log over HTTP, on an embedded runtime."""

from __future__ import annotations

import asyncio
import copy
import csv
import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.auth import hash_api_key
from gateway.envelope import Envelope
from gateway.publisher import PublishResult
from gateway.runtime import Runtime
from gateway.stores.rejections import RejectedRow
from tests.conftest import SAMPLES
from tests.servers import embedded_runtime, serving

pytestmark = pytest.mark.integration

ADMIN = "admin-token-for-tests-only"
ECO_KEY = "sgw_test_key_eco_from_config"
OTHER_KEY = "sgw_test_key_other_from_config"
AGENCY_USCC = "11330106002500121C"
admin = {"Authorization": f"Bearer {ADMIN}"}


def make_runtime(tmp_path: Path) -> Runtime:
    return embedded_runtime(
        tmp_path, [{"id": "eco-push", "type": "http_push", "mapping": "eco-rest.penalty", "department": "eco"}],
        api={"admin_token": ADMIN},
        departments=[{"code": "eco", "name": "生态环境局", "api_key_hashes": [hash_api_key(ECO_KEY)],
                      "provider_uscc": AGENCY_USCC, "admin_division_code": "330106"},
                     {"code": "other", "name": "另一部门", "api_key_hashes": [hash_api_key(OTHER_KEY)]}])


def eco_items() -> list[dict[str, Any]]:
    page = json.loads((SAMPLES / "eco-rest" / "penalties-page-1.json").read_text(encoding="utf-8"))
    items: list[dict[str, Any]] = page["items"]
    return items


def broken(item: dict[str, Any]) -> dict[str, Any]:
    bad = copy.deepcopy(item)
    bad["creditCode"] = bad["creditCode"][:-1] + ("0" if bad["creditCode"][-1] != "0" else "1")
    return bad


def market(**changes: Any) -> dict[str, Any]:
    return {"code": "market", "name": "市场监管局", "region": "330100", "level": "市", "uscc": AGENCY_USCC,
            "contacts": [{"name": "张三", "phone": "13812345678", "email": "zhang@example.cn"}], **changes}


async def audit_actions(client: httpx.AsyncClient, **params: str) -> list[str]:
    answer = await client.get("/admin/audit", params={"limit": 1000, **params}, headers=admin)
    assert answer.status_code == 200, answer.text
    return [e["action"] for e in reversed(answer.json()["items"])]


async def test_departments_are_onboarded_validated_masked_in_lists_and_audited(tmp_path: Path) -> None:
    async with serving(make_runtime(tmp_path)) as base, httpx.AsyncClient(base_url=base) as client:
        created = await client.post("/admin/departments", json=market(), headers=admin)
        assert created.status_code == 201, created.text
        assert created.json()["level"] == "city" and created.json()["contacts"][0]["phone"] == "13812345678"

        bad = await client.post("/admin/departments", json=market(code="bad", uscc="11330000002482121X"),
                                headers=admin)
        assert bad.status_code == 422 and bad.json()["detail"]["code"] == "DEPARTMENT_INVALID"
        assert {e["field"] for e in bad.json()["detail"]["errors"]} == {"uscc"}
        assert bad.json()["detail"]["message_zh"]
        region = await client.post("/admin/departments", json=market(code="bad", region="990000"), headers=admin)
        assert region.status_code == 422 and region.json()["detail"]["errors"][0]["field"] == "region"
        again = await client.post("/admin/departments", json=market(), headers=admin)
        assert again.status_code == 409 and again.json()["detail"]["code"] == "DEPARTMENT_EXISTS"

        listed = (await client.get("/admin/departments", headers=admin)).json()
        by_code = {d["code"]: d for d in listed["items"]}
        assert set(by_code) == {"eco", "other", "market"} and listed["total"] == 3
        assert by_code["market"]["contacts"] == [{"name": "张*", "phone": "138****5678", "email": "z***@example.cn"}]
        assert by_code["eco"]["connectors"] == ["eco-push"] and by_code["eco"]["from_config"] is True
        assert by_code["eco"]["uscc"] == AGENCY_USCC and by_code["eco"]["region"] == "330106"

        viewer = (await client.post("/admin/keys", json={"name": "zhao", "role": "viewer"}, headers=admin)).json()
        as_viewer = await client.get("/admin/departments/market", headers={"X-API-Key": viewer["key"]})
        assert as_viewer.json()["contacts"][0]["phone"] == "138****5678"
        own = await client.get("/admin/departments", headers={"X-API-Key": ECO_KEY})
        assert [d["code"] for d in own.json()["items"]] == ["eco"]
        assert (await client.get("/admin/departments/market", headers={"X-API-Key": ECO_KEY})).status_code == 403

        patched = await client.patch("/admin/departments/market", json={"name": "市场监督管理局", "level": "county"},
                                     headers=admin)
        assert patched.status_code == 200 and patched.json()["name"] == "市场监督管理局"
        assert patched.json()["level"] == "county"
        assert (await client.patch("/admin/departments/nope", json={"name": "x"}, headers=admin)).status_code == 404
        assert (await client.patch("/admin/departments/market", json={"name": None}, headers=admin)).status_code == 422

        in_config = await client.delete("/admin/departments/eco", headers=admin)
        assert in_config.status_code == 409 and in_config.json()["detail"]["code"] == "DEPARTMENT_FROM_CONFIG"
        assert (await client.delete("/admin/departments/market", headers=admin)).status_code == 200
        assert (await client.get("/admin/departments/market", headers=admin)).status_code == 404

        assert await audit_actions(client, target="department:market") == [
            "department.create", "department.update", "department.delete"]
        entries = (await client.get("/admin/audit", params={"target": "department:market"}, headers=admin)).text
        assert "13812345678" not in entries and "张三" not in entries  # contacts are not audited in clear
        verified = (await client.get("/admin/audit/verify", headers=admin)).json()
        assert verified["ok"] is True and verified["entries"] == 4  # with the viewer key's issue


async def test_keys_are_shown_once_rotated_revoked_and_work_for_ingest_and_staff_roles(tmp_path: Path) -> None:
    item = eco_items()[0]
    async with serving(make_runtime(tmp_path)) as base, httpx.AsyncClient(base_url=base) as client:
        issued = await client.post("/admin/departments/eco/keys", json={}, headers=admin)
        assert issued.status_code == 201, issued.text
        first = issued.json()
        assert first["key"].startswith("sgw_") and first["role"] == "department" and first["department"] == "eco"
        listed = (await client.get("/admin/departments/eco/keys", headers=admin)).text
        assert first["key"] not in listed and hash_api_key(first["key"]) not in listed
        assert first["fingerprint"] in listed

        async def push(key: str) -> int:
            answer = await client.post("/ingest/eco-push", json=item, headers={"X-API-Key": key})
            return answer.status_code

        assert await push(first["key"]) == 202
        rotated = (await client.post(f"/admin/keys/{first['id']}/rotate", json={"grace_s": 600},
                                     headers=admin)).json()
        assert await push(first["key"]) == 202 and await push(rotated["key"]) == 202  # within the grace period
        again = (await client.post(f"/admin/keys/{rotated['id']}/rotate", headers=admin)).json()
        assert await push(rotated["key"]) == 401 and await push(again["key"]) == 202
        revoked = await client.post(f"/admin/keys/{again['id']}/revoke", headers=admin)
        assert revoked.status_code == 200 and revoked.json()["active"] is False
        assert await push(again["key"]) == 401
        assert (await client.post(f"/admin/keys/{again['id']}/rotate", headers=admin)).status_code == 409
        assert (await client.post("/admin/keys/999999/revoke", headers=admin)).status_code == 404

        viewer = (await client.post("/admin/keys", json={"name": "wang", "role": "viewer"}, headers=admin)).json()
        as_viewer = {"Authorization": f"Bearer {viewer['key']}"}
        assert (await client.get("/admin/dead-letters", headers=as_viewer)).status_code == 200
        assert (await client.post("/admin/dead-letters/redrive", json={"ids": ["1"]},
                                  headers=as_viewer)).status_code == 403
        assert await push(viewer["key"]) == 403  # a valid token, but not a department's
        assert (await client.post("/admin/keys", json={"name": "x", "role": "viewer", "department": "eco"},
                                  headers=admin)).status_code == 422
        assert (await client.post("/admin/keys", json={"name": "x", "role": "department", "department": "nope"},
                                  headers=admin)).status_code == 404

        actions = await audit_actions(client)
        assert actions == ["key.issue", "key.rotate", "key.rotate", "key.revoke", "key.issue"]
        audit_text = (await client.get("/admin/audit", params={"limit": 1000}, headers=admin)).text
        for key in (first["key"], rotated["key"], again["key"], viewer["key"]):
            assert key not in audit_text


async def test_a_department_sees_its_submissions_and_rejections_and_resubmits_until_resolved(tmp_path: Path) -> None:
    good, second = eco_items()[0], eco_items()[1]
    eco = {"X-API-Key": ECO_KEY}
    async with serving(make_runtime(tmp_path)) as base, httpx.AsyncClient(base_url=base) as client:
        pushed = (await client.post("/ingest/eco-push", json=[good, broken(second)], headers=eco)).json()
        accepted_id = pushed["outcomes"][0]["record_id"]

        subs = (await client.get("/departments/eco/submissions", headers=eco)).json()["items"]
        assert {s["outcome"] for s in subs} == {"accepted", "rejected"}
        rejected_sub = next(s for s in subs if s["outcome"] == "rejected")
        assert "RULE:CPT-001" in rejected_sub["error_codes"]

        listed = (await client.get("/departments/eco/rejections", headers=eco)).json()
        assert listed["open"] == 1 and listed["overdue"] == 0
        (rejection,) = listed["items"]
        assert rejection["due_on"] and rejection["overdue"] is False and rejection["status"] == "open"
        other = {"X-API-Key": OTHER_KEY}
        assert (await client.get("/departments/eco/rejections", headers=other)).status_code == 403
        assert (await client.post(f"/departments/eco/rejections/{rejection['id']}/resubmit",
                                  json={"payload": second}, headers=other)).status_code == 403
        assert (await client.post(f"/departments/other/rejections/{rejection['id']}/resubmit",
                                  json={"payload": second}, headers=other)).status_code == 404

        still_wrong = await client.post(f"/departments/eco/rejections/{rejection['id']}/resubmit",
                                        json={"payload": broken(second)}, headers=eco)
        assert still_wrong.status_code == 200, still_wrong.text
        body = still_wrong.json()
        assert body["resolved"] is False and body["outcome"]["status"] == "rejected"
        assert any(e["field"] == "counterparty_id_no" for e in body["outcome"]["errors"])
        newer = (await client.get("/departments/eco/rejections", params={"status": "open"}, headers=eco)).json()
        (reopened,) = newer["items"]
        assert reopened["due_on"] == rejection["due_on"]  # sending it wrong again does not restart the clock

        fixed = await client.post(f"/departments/eco/rejections/{reopened['id']}/resubmit",
                                  json={"payload": second}, headers=eco)
        assert fixed.status_code == 200, fixed.text
        assert fixed.json()["resolved"] is True and fixed.json()["outcome"]["status"] == "accepted"
        assert (await client.get("/departments/eco/rejections", headers=eco)).json()["open"] == 0
        done_again = await client.post(f"/departments/eco/rejections/{reopened['id']}/resubmit",
                                       json={"payload": second}, headers=eco)
        assert done_again.status_code == 409 and done_again.json()["detail"]["code"] == "REJECTION_NOT_OPEN"

        assert (await client.get(f"/admin/records/{accepted_id}/journey", headers=eco)).status_code == 200
        assert (await client.get(f"/admin/records/{accepted_id}/journey", headers=other)).status_code == 404
        assert (await client.get(f"/admin/records/{accepted_id}/journey", headers=admin)).status_code == 200
        assert (await client.get("/departments/nope/submissions", headers=admin)).status_code == 404

        resubmissions = (await client.get("/admin/audit", params={"action": "rejection.resubmit"},
                                          headers=admin)).json()["items"]
        assert [e["actor"] for e in resubmissions] == ["department:eco", "department:eco"]
        assert resubmissions[0]["after"]["status"] == "resolved"


async def test_a_department_onboarded_through_the_api_pushes_with_its_issued_key(tmp_path: Path) -> None:
    async with serving(make_runtime(tmp_path)) as base, httpx.AsyncClient(base_url=base) as client:
        assert (await client.post("/admin/departments", json=market(), headers=admin)).status_code == 201
        connector = {"id": "market-push", "type": "http_push", "mapping": "eco-rest.penalty", "department": "market"}
        created = await client.post("/admin/connectors", json=connector, headers=admin)
        assert created.status_code == 201, created.text
        key = (await client.post("/admin/departments/market/keys", headers=admin)).json()["key"]
        shown = (await client.get("/admin/departments/market", headers=admin)).json()
        assert shown["connectors"] == ["market-push"]

        pushed = await client.post("/ingest/market-push", json=eco_items()[0], headers={"X-API-Key": key})
        assert pushed.status_code == 202, pushed.text
        assert pushed.json()["counts"]["accepted"] == 1
        elsewhere = await client.post("/ingest/eco-push", json=eco_items()[0], headers={"X-API-Key": key})
        assert elsewhere.status_code == 403
        subs = (await client.get("/departments/market/submissions", headers={"X-API-Key": key})).json()["items"]
        assert [s["connector"] for s in subs] == ["market-push"]
        in_use = await client.delete("/admin/departments/market", headers=admin)
        assert in_use.status_code == 409 and in_use.json()["detail"]["code"] == "DEPARTMENT_IN_USE"


def batch_files_runtime(tmp_path: Path) -> Runtime:
    """A batch-file connector of the eco department, with its three formats' mappings."""
    exchange = tmp_path / "exchange"
    exchange.mkdir()
    return embedded_runtime(
        tmp_path, [{"id": "batch-files", "type": "batch_files", "department": "eco",
                    "mappings": {"csv": "batch-files.penalty-csv", "xlsx": "batch-files.penalty-xlsx",
                                 "xml": "batch-files.penalty-xml"},
                    "options": {"exchange_root": str(exchange)}}],
        departments=[{"code": "eco", "name": "生态环境局", "api_key_hashes": [hash_api_key(ECO_KEY)],
                      "provider_uscc": AGENCY_USCC, "admin_division_code": "330106"}])


async def publish_csv_row(runtime: Runtime, row: dict[str, str]) -> PublishResult:
    """``row`` published as the connector publishes a CSV file's chunk."""
    return await runtime.publisher.publish(Envelope(
        connector="batch-files", payload=[row], received_at=datetime.now(UTC), department="eco",
        records_inline=True, meta={"variant": "csv", "provider_uscc": "113301220025023382",
                                   "file_mtime": "2025-06-12T17:31:02+08:00", "row_offset": 0,
                                   "row_numbers": [1]}))


async def test_a_rejected_batch_file_row_is_resubmitted_through_the_files_mapping_variant(tmp_path: Path) -> None:
    """A batch-file connector maps csv, xlsx and xml rows differently: the rejection remembers the
    variant, and the corrected row (sent with no file, so no file time) is mapped as the file's rows
    were. Before, the resubmission found no mapping to use (409 RESUBMIT_UNAVAILABLE)."""
    text = (SAMPLES / "batch-files" / "113301220025023382_XZCF_20250612_001.csv").read_bytes().decode("gb18030")
    good = next(csv.DictReader(io.StringIO(text, newline="")))
    uscc = good["统一社会信用代码"]
    bad = {**good, "统一社会信用代码": uscc[:-1] + ("0" if uscc[-1] != "0" else "1")}  # a wrong check digit
    runtime = batch_files_runtime(tmp_path)
    eco = {"X-API-Key": ECO_KEY}
    async with serving(runtime) as base, httpx.AsyncClient(base_url=base) as client:
        published = await publish_csv_row(runtime, bad)
        assert [o.status for o in published.outcomes] == ["rejected"]
        (rejection,) = (await client.get("/departments/eco/rejections", headers=eco)).json()["items"]

        fixed = await client.post(f"/departments/eco/rejections/{rejection['id']}/resubmit",
                                  json={"payload": good}, headers=eco)
        assert fixed.status_code == 200, fixed.text
        assert fixed.json()["resolved"] is True and fixed.json()["outcome"]["status"] == "accepted"
        assert await asyncio.to_thread(runtime.store.records.is_duplicate, fixed.json()["outcome"]["record_id"])


async def test_a_targets_rejection_of_a_batch_file_row_is_resubmitted_with_the_variant_named(tmp_path: Path) -> None:
    """The data centre refused an accepted row: its rejection (target set) cannot know which of the
    connector's formats the row came in, so the department names it; without it the answer says
    which to choose (before: 409 RESUBMIT_UNAVAILABLE, as if the connector were gone)."""
    text = (SAMPLES / "batch-files" / "113301220025023382_XZCF_20250612_001.csv").read_bytes().decode("gb18030")
    good = next(csv.DictReader(io.StringIO(text, newline="")))
    runtime = batch_files_runtime(tmp_path)
    eco = {"X-API-Key": ECO_KEY}
    async with serving(runtime) as base, httpx.AsyncClient(base_url=base) as client:
        published = await publish_csv_row(runtime, good)
        (accepted,) = published.outcomes
        await asyncio.to_thread(runtime.store.rejections.add, RejectedRow(  # as settling a refusal writes it
            kind="penalty", connector="batch-files", rejected_at=datetime.now(UTC), department="eco",
            errors=[{"code": "DC_REJECTED", "field": "fine_amount_yuan", "severity": "error",
                     "location": "data-centre", "message_zh": "data-centre 拒收：金额不符",
                     "message_en": "rejected by data-centre: amount"}],
            business_key=accepted.business_key, record_id=accepted.record_id, raw_payload=accepted.record,
            target="data-centre"))
        (rejection,) = (await client.get("/departments/eco/rejections", headers=eco)).json()["items"]
        url = f"/departments/eco/rejections/{rejection['id']}/resubmit"
        corrected = {**good, "罚款金额（元）": "4800"} if "罚款金额（元）" in good else good

        unnamed = await client.post(url, json={"payload": corrected}, headers=eco)
        assert unnamed.status_code == 422, unnamed.text
        problem = unnamed.json()["detail"]
        assert problem["code"] == "RESUBMIT_VARIANT_REQUIRED" and "csv、xlsx、xml" in problem["message_zh"]
        wrong = await client.post(url, json={"payload": corrected, "variant": "json"}, headers=eco)
        assert wrong.status_code == 422 and wrong.json()["detail"]["code"] == "RESUBMIT_VARIANT_UNKNOWN"

        named = await client.post(url, json={"payload": corrected, "variant": "csv"}, headers=eco)
        assert named.status_code == 200, named.text
        assert named.json()["outcome"]["status"] == "accepted" and named.json()["resolved"] is True
