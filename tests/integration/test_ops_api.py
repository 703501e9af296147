"""The ops routes over HTTP: admin token, dead letters listed, shown, redriven (delivered once) and
discarded with a reason, and the record's journey."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.auth import hash_api_key
from tests.conftest import SAMPLES
from tests.peers.national_platform_server import APP_ID, APP_SECRET, NationalPlatformServer
from tests.servers import embedded_runtime, serving

pytestmark = pytest.mark.integration

KEY = "sgw_test_key_ops_department"
ADMIN = "admin-token-for-tests-only"


def items() -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = json.loads(
        (SAMPLES / "eco-rest" / "penalties-page-1.json").read_text(encoding="utf-8"))["items"]
    return found


async def test_dead_letters_are_listed_redriven_once_and_discarded_with_a_reason(tmp_path: Path) -> None:
    async with NationalPlatformServer() as national:
        national_url = national.url
        runtime = embedded_runtime(
            tmp_path, [{"id": "eco-push", "type": "http_push", "mapping": "eco-rest.penalty", "department": "eco"}],
            departments=[{"code": "eco", "name": "生态环境", "api_key_hashes": [hash_api_key(KEY)]}],
            api={"admin_token": ADMIN},
            delivery={"max_attempts": 1},  # the first failure dead-letters the record
            adapters=[{"id": "national", "type": "national_platform",
                       "options": {"base_url": national_url, "app_id": APP_ID, "app_secret": APP_SECRET}}],
            routing=[{"kinds": ["*"], "adapters": ["national"]}])
        admin = {"Authorization": f"Bearer {ADMIN}"}
        national.fail(1000, 503)  # the platform is down
        async with serving(runtime) as base, httpx.AsyncClient(base_url=base) as client:
            pushed = await client.post("/ingest/eco-push", json=items(), headers={"X-API-Key": KEY})
            first, second = (o["record_id"] for o in pushed.json()["outcomes"])
            await runtime.drain()

            assert (await client.get("/admin/dead-letters")).status_code == 401
            listed = (await client.get("/admin/dead-letters", headers=admin)).json()
            by_record = {d["record_id"]: d for d in listed["items"]}
            assert set(by_record) == {first, second}
            shown = (await client.get(f"/admin/dead-letters/{by_record[first]['id']}", headers=admin)).json()
            assert shown["record"]["record_id"] == first and shown["error"]

            national.fail(0)  # fixed
            redriven = await client.post("/admin/dead-letters/redrive", json={"ids": [by_record[first]["id"]]},
                                         headers=admin)
            assert redriven.status_code == 200, redriven.text
            discarded = await client.post(f"/admin/dead-letters/{by_record[second]['id']}/discard",
                                          json={"reason": "superseded by a corrected decision"}, headers=admin)
            assert discarded.status_code == 200, discarded.text
            await runtime.drain()
            journey = (await client.get(f"/admin/records/{first}/journey", headers=admin)).json()
            left = (await client.get("/admin/dead-letters", headers=admin)).json()

    events = [step["event"] for step in journey["steps"]]
    assert events.index("dead") < events.index("redriven") < events.index("delivered")
    assert left["items"] == []
    assert national.stored == {first: 1}  # the redriven one, once; the discarded one never
