"""The connector and mapping registry over HTTP, against a running embedded gateway: a push connector
created, pushed to, given a new mapping version, paused, resumed and deleted without a restart;
validation, dry runs, plugin schemas, routing and the audit trail of every change."""

from __future__ import annotations

import copy
import json
import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.auth import hash_api_key
from gateway.runtime import Runtime
from tests.conftest import MAPPINGS, SAMPLES
from tests.servers import embedded_runtime, serving

pytestmark = pytest.mark.integration

KEY = "sgw_test_key_registry_department"
ADMIN = "admin-token-for-registry-tests"
AUTH = {"Authorization": f"Bearer {ADMIN}"}
ECO_PUSH = {"id": "eco-push", "type": "http_push", "mapping": "eco-rest.penalty", "department": "eco"}


def make_runtime(tmp_path: Path, connectors: list[dict[str, Any]] | None = None) -> Runtime:
    return embedded_runtime(
        tmp_path, connectors or [],
        departments=[{"code": "eco", "name": "生态环境", "api_key_hashes": [hash_api_key(KEY)]}],
        api={"admin_token": ADMIN})


def items() -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = json.loads(
        (SAMPLES / "eco-rest" / "penalties-page-1.json").read_text(encoding="utf-8"))["items"]
    return found


def litigation_v2() -> str:
    """The eco mapping with another default for admin_litigation, its golden examples updated."""
    text = (MAPPINGS / "eco-rest.penalty.yaml").read_text(encoding="utf-8")
    default = "first: [{meta: admin_litigation}, {const: %s}]"
    changed = text.replace(default % "无", default % "未提起行政诉讼")
    changed = changed.replace("admin_litigation: 无", "admin_litigation: 未提起行政诉讼")
    assert changed != text
    return changed


def accepted_litigation(tmp_path: Path) -> list[str]:
    with sqlite3.connect(tmp_path / "gateway.sqlite") as db:
        rows = db.execute("SELECT record FROM accepted_records ORDER BY accepted_at").fetchall()
    return [json.loads(r[0])["admin_litigation"] for r in rows]


async def test_a_push_connector_is_created_fed_remapped_paused_resumed_and_deleted_while_running(
        tmp_path: Path) -> None:
    runtime = make_runtime(tmp_path)
    first, second = items()
    push = {"X-API-Key": KEY}
    async with serving(runtime) as base, httpx.AsyncClient(base_url=base, timeout=30) as client:
        assert (await client.post("/ingest/eco-push", json=first, headers=push)).status_code == 404

        created = await client.post("/admin/connectors", json=ECO_PUSH, headers=AUTH)
        assert created.status_code == 201, created.text
        assert created.json()["version"] == 1 and created.json()["origin"] == "api"
        assert (await client.post("/admin/connectors", json=ECO_PUSH, headers=AUTH)).status_code == 409

        pushed = await client.post("/ingest/eco-push", json=first, headers=push)
        assert pushed.status_code == 202, pushed.text
        assert pushed.json()["counts"] == {"accepted": 1, "rejected": 0, "duplicate": 0}
        status = (await client.get("/admin/connectors/eco-push/status", headers=AUTH)).json()
        assert status["state"] == "running" and status["last_record_at"]
        assert status["counts"]["accepted"] == 1 and status["counts"]["received"] == 1

        put = await client.put("/admin/mappings/eco-rest.penalty", json={"spec": litigation_v2()}, headers=AUTH)
        assert put.status_code == 201, put.text
        assert put.json()["version"] == 2
        assert (await client.post("/ingest/eco-push", json=second, headers=push)).json()["counts"]["accepted"] == 1
        assert accepted_litigation(tmp_path) == ["无", "未提起行政诉讼"]  # the new version, no restart

        paused = await client.put("/admin/connectors/eco-push/pause", headers=AUTH)
        assert paused.status_code == 202 and paused.json()["state"] == "paused"
        refused = await client.post("/ingest/eco-push", json=first, headers=push)
        assert refused.status_code == 503 and refused.json()["detail"]["code"] == "CONNECTOR_PAUSED"
        assert refused.headers["Retry-After"]

        resumed = await client.put("/admin/connectors/eco-push/resume", headers=AUTH)
        assert resumed.status_code == 202 and resumed.json()["state"] == "running"
        again = await client.post("/ingest/eco-push", json=first, headers=push)
        assert again.status_code == 202 and again.json()["counts"]["accepted"] == 1  # remapped: a new version

        assert (await client.delete("/admin/connectors/eco-push", headers=AUTH)).status_code == 204
        assert (await client.post("/ingest/eco-push", json=first, headers=push)).status_code == 404
        assert (await client.get("/admin/connectors/eco-push", headers=AUTH)).status_code == 404
        audit = (await client.get("/admin/audit", headers=AUTH, params={"limit": 50})).json()

    actions = [entry["action"] for entry in audit["items"]] if isinstance(audit, dict) else []
    for action in ("connector.create", "mapping.update", "connector.pause", "connector.resume", "connector.delete"):
        assert action in actions, actions


async def test_a_connector_changed_through_the_api_wins_over_the_config_file_after_a_restart(tmp_path: Path) -> None:
    runtime = make_runtime(tmp_path, [ECO_PUSH])
    async with serving(runtime) as base, httpx.AsyncClient(base_url=base, timeout=30) as client:
        changed = await client.put("/admin/connectors/eco-push/config",
                                   json={**ECO_PUSH, "meta": {"admin_litigation": "已提起"}}, headers=AUTH)
        assert changed.status_code == 200, changed.text
        assert changed.json()["version"] == 2
        paused = await client.put("/admin/connectors/eco-push/pause", headers=AUTH)
        assert paused.status_code == 202
    restarted = make_runtime(tmp_path, [ECO_PUSH])  # the file still says the old settings
    async with serving(restarted) as base, httpx.AsyncClient(base_url=base, timeout=30) as client:
        shown = (await client.get("/admin/connectors/eco-push", headers=AUTH)).json()
        refused = await client.post("/ingest/eco-push", json=items()[0], headers={"X-API-Key": KEY})
    assert shown["config"]["meta"] == {"admin_litigation": "已提起"} and shown["paused"] is True
    assert refused.status_code == 503


async def test_validation_reports_every_problem_with_its_path_and_saves_nothing(tmp_path: Path) -> None:
    runtime = make_runtime(tmp_path)
    bad = {"id": "Bad Id!", "mapping": "eco-rest.penalt", "department": "nowhere",
           "options": {"base_url": 42, "no_such_option": 1}}
    async with serving(runtime) as base, httpx.AsyncClient(base_url=base, timeout=30) as client:
        answer = await client.put("/admin/connector-plugins/rest_poll/config/validate", json=bad, headers=AUTH)
        refused = await client.post("/admin/connectors", json={**bad, "type": "rest_poll"}, headers=AUTH)
        unknown = await client.put("/admin/connector-plugins/rest_pol/config/validate", json={}, headers=AUTH)
        listed = (await client.get("/admin/connectors", headers=AUTH)).json()
    assert answer.status_code == 200
    body = answer.json()
    assert body["valid"] is False and body["error_count"] == len(body["errors"])
    paths = {e["path"] for e in body["errors"]}
    assert {"id", "mapping", "department", "options.no_such_option"} <= paths, body["errors"]
    assert any(p.startswith("options.") and p != "options.no_such_option" for p in paths)
    assert any("did you mean 'eco-rest.penalty'" in e["message"] for e in body["errors"])
    assert refused.status_code == 422 and refused.json()["detail"]["code"] == "CONNECTOR_INVALID"
    assert any("did you mean 'rest_poll'" in e["message"] for e in unknown.json()["errors"])
    assert listed == []


async def test_a_dry_run_shows_standard_records_or_field_errors_and_writes_nothing(tmp_path: Path) -> None:
    runtime = make_runtime(tmp_path, [ECO_PUSH])
    good, bad = items()[0], copy.deepcopy(items()[1])
    bad["creditCode"] = bad["creditCode"][:-1] + ("0" if bad["creditCode"][-1] != "0" else "1")
    async with serving(runtime) as base, httpx.AsyncClient(base_url=base, timeout=30) as client:
        answer = await client.post("/admin/connectors/eco-push/dry-run", json={"payload": [good, bad]}, headers=AUTH)
        status = (await client.get("/admin/connectors/eco-push/status", headers=AUTH)).json()
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert result["counts"] == {"accepted": 1, "rejected": 1, "duplicate": 0}
    accepted, rejected = result["outcomes"]
    assert accepted["record"]["record_kind"] == "penalty" and accepted["record"]["counterparty_name"]
    assert ("RULE:CPT-001", "counterparty_id_no") in {(e["code"], e["field"]) for e in rejected["errors"]}
    assert status["counts"]["received"] == 0
    with sqlite3.connect(tmp_path / "gateway.sqlite") as db:
        assert db.execute("SELECT count(*) FROM accepted_records").fetchone()[0] == 0
        assert db.execute("SELECT count(*) FROM rejections").fetchone()[0] == 0


async def test_a_mapping_version_is_refused_with_its_lines_when_it_does_not_compile_or_its_examples_fail(
        tmp_path: Path) -> None:
    runtime = make_runtime(tmp_path)
    text = (MAPPINGS / "eco-rest.penalty.yaml").read_text(encoding="utf-8")
    broken = text.replace("  penalty_action_no: {path: caseNo}\n", "  penalty_action_numero: {path: caseNo}\n")
    wrong_examples = text.replace("{const: 无}]\n  admin_litigation", "{const: 有}]\n  admin_litigation")
    async with serving(runtime) as base, httpx.AsyncClient(base_url=base, timeout=30) as client:
        not_compiled = await client.put("/admin/mappings/eco-rest.penalty", json={"spec": broken}, headers=AUTH)
        failing = await client.put("/admin/mappings/eco-rest.penalty", json={"spec": wrong_examples}, headers=AUTH)
        same = await client.put("/admin/mappings/eco-rest.penalty", json={"spec": text}, headers=AUTH)
        shown = (await client.get("/admin/mappings/eco-rest.penalty", headers=AUTH)).json()
        first = await client.get("/admin/mappings/eco-rest.penalty/versions/1", headers=AUTH)
        listed = (await client.get("/admin/mappings", headers=AUTH)).json()
    assert not_compiled.status_code == 422
    line = text[:text.index("  penalty_action_no")].count("\n") + 1
    messages = [e["message"] for e in not_compiled.json()["detail"]["errors"]]
    assert any(m.startswith(f"eco-rest.penalty@v2.yaml:{line}: fields.penalty_action_numero:") for m in messages), \
        messages
    assert failing.status_code == 422
    assert any("examples[" in e["message"] for e in failing.json()["detail"]["errors"])
    assert same.status_code == 200  # the same text: no new version
    assert shown["current"]["version"] == 1 and len(shown["versions"]) == 1
    assert first.json()["spec"] == text
    assert "eco-rest.penalty" in {m["name"] for m in listed}


async def test_plugins_have_schemas_routing_swaps_and_roles_are_enforced(tmp_path: Path) -> None:
    runtime = make_runtime(tmp_path, [ECO_PUSH])
    async with serving(runtime) as base, httpx.AsyncClient(base_url=base, timeout=30) as client:
        plugins = (await client.get("/admin/connector-plugins", headers=AUTH)).json()
        anonymous = await client.get("/admin/connectors")
        department = await client.get("/admin/connectors", headers={"Authorization": f"Bearer {KEY}"})
        routing = (await client.get("/admin/routing", headers=AUTH)).json()
        bad_route = await client.put("/admin/routing", json={"routes": [{"kinds": ["*"], "adapters": ["nowhere"]}]},
                                     headers=AUTH)
        no_route = await client.put("/admin/routing", json={"routes": []}, headers=AUTH)
        pushed = await client.post("/ingest/eco-push", json=items()[0], headers={"X-API-Key": KEY})
        probe = await client.post("/admin/connectors/eco-push/test", headers=AUTH)
        restarted = await client.post("/admin/connectors/eco-push/restart", headers=AUTH)
        viewer_restart = await client.post("/admin/connectors/eco-push/restart", headers={"Authorization": "Bearer x"})
    by_type = {p["type"]: p for p in plugins}
    assert {"http_push", "rest_poll", "soap_poll", "mqtt"} <= set(by_type)
    assert "properties" in by_type["rest_poll"]["options_schema"]
    assert by_type["http_push"]["pushes_over_http"] is True
    assert anonymous.status_code == 401 and department.status_code == 403
    assert routing["routes"] == [{"kinds": ["*"], "adapters": ["data-centre"]}]
    assert bad_route.status_code == 422
    assert bad_route.json()["detail"]["errors"][0]["path"] == "routes[0].adapters[0]"
    assert no_route.status_code == 200 and no_route.json()["version"] == 2
    assert pushed.status_code == 202
    assert runtime.routing.adapters_for("penalty") == ()
    assert probe.status_code == 200 and probe.json()["supported"] is False
    assert restarted.status_code == 202 and restarted.json()["state"] == "running"
    assert viewer_restart.status_code == 401


async def test_a_connection_test_authenticates_and_secrets_are_masked_kept_and_never_audited(
        tmp_path: Path) -> None:
    from tests.peers.eco_rest_server import EcoRestServer

    runtime = make_runtime(tmp_path)
    async with EcoRestServer() as peer:
        poll = {"id": "eco-poll", "type": "rest_poll", "mapping": "eco-rest.penalty",
                "options": {"base_url": peer.base_url, "profile": "eco-rest", "client_id": "sgw",
                            "client_secret": "s3cret", "initial_since": "2025-06-01T00:00:00+08:00",
                            "poll_interval_s": 3600}}
        wrong = {**poll, "id": "eco-denied", "options": {**poll["options"], "client_secret": "not-the-secret"}}
        async with serving(runtime) as base, httpx.AsyncClient(base_url=base, timeout=30) as client:
            assert (await client.post("/admin/connectors", json=poll, headers=AUTH)).status_code == 201
            assert (await client.post("/admin/connectors", json=wrong, headers=AUTH)).status_code == 201
            good = (await client.post("/admin/connectors/eco-poll/test", headers=AUTH)).json()
            bad = (await client.post("/admin/connectors/eco-denied/test", headers=AUTH)).json()
            shown = (await client.get("/admin/connectors/eco-poll", headers=AUTH)).json()
            resent = await client.put("/admin/connectors/eco-poll/config",
                                      json={**shown["config"], "meta": {"x": "y"}}, headers=AUTH)
            after_resend = (await client.post("/admin/connectors/eco-poll/test", headers=AUTH)).json()
            audit = (await client.get("/admin/audit", headers=AUTH, params={"limit": 50})).text
    assert good["supported"] is True and good["ok"] is True, good
    assert bad["supported"] is True and bad["ok"] is False, bad
    assert shown["config"]["options"]["client_secret"] == "**********"
    assert resent.status_code == 200 and resent.json()["version"] == 2
    assert after_resend["ok"] is True  # the masked secret sent back kept the stored one
    assert "s3cret" not in audit and "not-the-secret" not in audit and "connector.update" in audit
