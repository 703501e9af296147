"""``sgw connectors apply -f DIR`` run as a process, against the database of a running gateway: the
dry run reports and changes nothing, an invalid folder changes nothing, a valid one is picked up
by the running gateway (registry revision poll) without a restart."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.auth import hash_api_key
from gateway.runtime import Runtime
from tests.conftest import MAPPINGS, ROOT, SAMPLES
from tests.servers import embedded_runtime, serving

pytestmark = pytest.mark.integration

KEY = "sgw_test_key_apply_department"


def sgw(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gateway.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=50, check=False)


def make_runtime(tmp_path: Path) -> Runtime:
    return embedded_runtime(
        tmp_path, [{"id": "old-push", "type": "http_push", "mapping": "eco-rest.penalty", "department": "eco"}],
        departments=[{"code": "eco", "name": "生态环境", "api_key_hashes": [hash_api_key(KEY)]}])


def folder(tmp_path: Path, options: dict[str, Any] | None = None) -> Path:
    out = tmp_path / "connectors"
    (out / "mappings").mkdir(parents=True)
    (out / "eco-push.yaml").write_text(
        "id: eco-push\ntype: http_push\nmapping: eco-rest.penalty\ndepartment: eco\n"
        + (f"options: {json.dumps(options)}\n" if options else ""), encoding="utf-8")
    text = (MAPPINGS / "eco-rest.penalty.yaml").read_text(encoding="utf-8")
    (out / "mappings" / "eco-rest.penalty.yaml").write_text(text.replace("version: 1\n", "version: 2\n", 1),
                                                            encoding="utf-8")
    return out


def item() -> dict[str, Any]:
    found: dict[str, Any] = json.loads(
        (SAMPLES / "eco-rest" / "penalties-page-1.json").read_text(encoding="utf-8"))["items"][0]
    return found


async def test_apply_makes_the_running_gateway_match_the_folder(tmp_path: Path) -> None:
    runtime = make_runtime(tmp_path)
    config = str(tmp_path / "gateway.yaml")
    connectors = folder(tmp_path)
    async with serving(runtime) as base, httpx.AsyncClient(base_url=base, timeout=30) as client:
        dry = await asyncio.to_thread(sgw, "connectors", "apply", "-f", str(connectors), "-c", config, "--dry-run")
        assert dry.returncode == 0, dry.stderr
        assert dry.stdout.splitlines() == ["connector eco-push: created", "connector old-push: removed",
                                           "mapping eco-rest.penalty: changed", "dry run: nothing was changed"]
        assert (await client.post("/ingest/eco-push", json=item(), headers={"X-API-Key": KEY})).status_code == 404

        done = await asyncio.to_thread(sgw, "connectors", "apply", "-f", str(connectors), "-c", config)
        assert done.returncode == 0, done.stderr
        assert "connector eco-push: created" in done.stdout.splitlines()
        await asyncio.wait_for(runtime.live.wait_for_revision(runtime.registry.revision()), timeout=20)

        pushed = await client.post("/ingest/eco-push", json=item(), headers={"X-API-Key": KEY})
        gone = await client.post("/ingest/old-push", json=item(), headers={"X-API-Key": KEY})
        again = await asyncio.to_thread(sgw, "connectors", "apply", "-f", str(connectors), "-c", config)
        listed = await asyncio.to_thread(sgw, "connectors", "list", "-c", config)
    assert pushed.status_code == 202 and pushed.json()["counts"]["accepted"] == 1
    assert gone.status_code == 404
    assert again.stdout.splitlines() == ["connector eco-push: unchanged", "mapping eco-rest.penalty: unchanged"]
    assert [json.loads(line)["id"] for line in listed.stdout.splitlines()] == ["eco-push"]


def test_an_invalid_folder_changes_nothing_and_names_every_problem(tmp_path: Path) -> None:
    runtime = make_runtime(tmp_path)  # writes the config file
    del runtime
    connectors = folder(tmp_path, options={"unknown_option": 1})
    (connectors / "broken.yaml").write_text("id: broken\ntype: http_pus\nmapping: nope\n", encoding="utf-8")
    done = sgw("connectors", "apply", "-f", str(connectors), "-c", str(tmp_path / "gateway.yaml"))
    listed = sgw("connectors", "list", "-c", str(tmp_path / "gateway.yaml"))
    assert done.returncode == 2
    assert "eco-push.yaml: options.unknown_option:" in done.stderr
    assert "broken.yaml: type: unknown" in done.stderr and "did you mean 'http_push'" in done.stderr
    assert "broken.yaml: mapping: unknown mapping 'nope'" in done.stderr
    assert listed.stdout == ""  # nothing was seeded or applied
