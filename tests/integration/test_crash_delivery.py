"""Crash safety over real processes: gateways (``python -m gateway.cli run``) killed with SIGKILL in
the middle of delivery, restarted; the data centre on the real PostgreSQL must then hold every
accepted record exactly once (record ids compared).

A pusher thread plays the source: it pushes 10,000 records in requests of 500 and re-sends a
request until it gets a 202 (a request cut off by the kill was never acknowledged). The accepted
set is every record id a 202 answered with, accepted or duplicate (a re-sent record that the
killed gateway had already committed comes back as a duplicate, with its id).
"""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from gateway.auth import hash_api_key
from tests.conftest import MAPPINGS, ROOT, SAMPLES, free_port

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
KEY = "sgw_crash_test_key"
RECORDS = 10_000
PER_REQUEST = 500


def eco_record(n: int) -> dict[str, Any]:
    page = json.loads((SAMPLES / "eco-rest" / "penalties-page-1.json").read_text(encoding="utf-8"))
    item: dict[str, Any] = copy.deepcopy(page["items"][0])
    item.update(id=f"HJCF-330111-2025-{n:06d}", caseNo=f"富环罚案〔2025〕{n:06d}", decisionNo=f"杭环富罚〔2025〕{n}号")
    return item


# --- processes -----------------------------------------------------------------------------------

@dataclass
class Gateway:
    config: Path
    port: int
    log: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen([sys.executable, "-m", "gateway.cli", "run", "-c", str(self.config)],
                                            cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text(errors="replace")[-3000:]
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError("the gateway did not start")

    def kill(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@dataclass
class RedisServer:
    workdir: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        # Our own Redis, persisting every write (AOF, fsync always), so that it can be killed and restarted.
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.workdir),
             "--appendonly", "yes", "--appendfsync", "always", "--save", "", "--protected-mode", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                import redis

                if redis.Redis(port=self.port).ping():
                    return
            except Exception:
                time.sleep(0.05)
        raise AssertionError("redis did not start")

    def kill(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


class Pusher(threading.Thread):
    """Pushes every record, re-sending a request (to the next gateway) until it is acknowledged."""

    def __init__(self, gateways: list[Gateway], deadline_s: float = 150) -> None:
        super().__init__(daemon=True)
        self.gateways = gateways
        self.accepted: set[str] = set()
        self.error: str | None = None
        self._deadline = time.monotonic() + deadline_s

    def run(self) -> None:
        with httpx.Client(timeout=60) as client:
            for start in range(0, RECORDS, PER_REQUEST):
                body = [eco_record(n) for n in range(start, start + PER_REQUEST)]
                if not self._push(client, body):
                    return

    def _push(self, client: httpx.Client, body: list[dict[str, Any]]) -> bool:
        attempt = 0
        while time.monotonic() < self._deadline:
            gateway = self.gateways[attempt % len(self.gateways)]
            attempt += 1
            try:
                answer = client.post(f"{gateway.url}/ingest/eco-push", json=body, headers={"X-API-Key": KEY})
            except httpx.HTTPError:
                time.sleep(0.2)
                continue
            if answer.status_code != 202:
                time.sleep(0.2)
                continue
            outcomes = answer.json()["outcomes"]
            bad = [o for o in outcomes if o["status"] == "rejected"]
            if bad:
                self.error = f"rejected records: {bad[0]['errors']}"
                return False
            self.accepted.update(o["record_id"] for o in outcomes)
            return True
        self.error = "deadline passed while pushing"
        return False


# --- fixtures ------------------------------------------------------------------------------------

@pytest.fixture
def pg_schema() -> Iterator[str]:
    schema = f"crash_{uuid.uuid4().hex[:10]}"
    yield schema
    engine = sa.create_engine(PG_URL)
    with engine.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    engine.dispose()


def write_config(tmp_path: Path, name: str, schema: str, redis_url: str | None = None) -> Gateway:
    stores: dict[str, Any] = {"database_url": f"sqlite:///{tmp_path / 'gateway.sqlite'}"}
    if redis_url:
        stores.update(redis_url=redis_url, redis_prefix=f"crash-{schema}")
    port = free_port()
    config = {
        "mappings_dir": str(MAPPINGS),
        "stores": stores,
        "api": {"port": port},
        "logging": {"level": "WARNING"},
        "delivery": {"lease_s": 3, "first_backoff_s": 0.2, "max_backoff_s": 2, "circuit_open_s": 0.5,
                     "relay_interval_s": 0.5},
        "departments": [{"code": "eco-a", "name": "生态环境甲", "api_key_hashes": [hash_api_key(KEY)]}],
        "connectors": [{"id": "eco-push", "type": "http_push", "mapping": "eco-rest.penalty", "department": "eco-a"}],
        "adapters": [{"id": "data-centre", "type": "data_centre", "batch_size": 100,
                      "options": {"url": "postgresql://postgres@127.0.0.1:5432/test", "db_schema": schema,
                                  "create_tables": True}}],
        "routing": [{"kinds": ["*"], "adapters": ["data-centre"]}],
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(json.dumps(config), encoding="utf-8")
    return Gateway(config=path, port=port, log=tmp_path / f"{name}.log")


def delivered(schema: str) -> tuple[int, set[str]]:
    engine = sa.create_engine(PG_URL)
    try:
        with engine.connect() as conn:
            exists = conn.execute(sa.text("SELECT to_regclass(:t)"), {"t": f"{schema}.ex_penalty"}).scalar()
            if exists is None:
                return 0, set()
            ids = [r[0] for r in conn.execute(sa.text(f'SELECT cd_id FROM "{schema}".ex_penalty'))]
    finally:
        engine.dispose()
    return len(ids), set(ids)


def wait_for_rows(schema: str, at_least: int, timeout_s: float) -> int:
    deadline = time.monotonic() + timeout_s
    count = 0
    while time.monotonic() < deadline:
        count, _ = delivered(schema)
        if count >= at_least:
            return count
        time.sleep(0.1)
    return count


def assert_exactly_once(schema: str, pusher: Pusher, timeout_s: float = 90) -> None:
    pusher.join(timeout=150)
    assert pusher.error is None, pusher.error
    assert len(pusher.accepted) == RECORDS
    wait_for_rows(schema, RECORDS, timeout_s)
    time.sleep(1.0)  # anything delivered twice would show up now
    count, ids = delivered(schema)
    assert count == len(ids), "a record was written twice"
    assert ids == pusher.accepted, (len(ids - pusher.accepted), len(pusher.accepted - ids))


# --- the tests -----------------------------------------------------------------------------------

def test_embedded_gateway_killed_mid_delivery_loses_and_duplicates_nothing(tmp_path: Path, pg_schema: str) -> None:
    gateway = write_config(tmp_path, "gw", pg_schema)
    gateway.start()
    try:
        pusher = Pusher([gateway])
        pusher.start()
        assert 0 < wait_for_rows(pg_schema, 2000, 90) < RECORDS, "the kill should land mid-delivery"
        gateway.kill()
        gateway.start()
        assert_exactly_once(pg_schema, pusher)
    finally:
        gateway.stop()


def test_redis_gateway_killed_mid_delivery_loses_and_duplicates_nothing(tmp_path: Path, pg_schema: str) -> None:
    redis_server = RedisServer(tmp_path)
    redis_server.start()
    gateway = write_config(tmp_path, "gw", pg_schema, redis_server.url)
    try:
        gateway.start()
        pusher = Pusher([gateway])
        pusher.start()
        assert 0 < wait_for_rows(pg_schema, 2000, 90) < RECORDS
        gateway.kill()
        gateway.start()
        assert_exactly_once(pg_schema, pusher)
    finally:
        gateway.stop()
        redis_server.stop()


def test_redis_killed_and_restarted_mid_delivery_loses_and_duplicates_nothing(tmp_path: Path, pg_schema: str) -> None:
    redis_server = RedisServer(tmp_path)
    redis_server.start()
    gateway = write_config(tmp_path, "gw", pg_schema, redis_server.url)
    try:
        gateway.start()
        pusher = Pusher([gateway])
        pusher.start()
        assert 0 < wait_for_rows(pg_schema, 2000, 90) < RECORDS
        redis_server.kill()
        time.sleep(1.0)  # the gateway keeps acknowledging (SQL commit) and fails to hand on meanwhile
        redis_server.start()
        assert_exactly_once(pg_schema, pusher)
    finally:
        gateway.stop()
        redis_server.stop()


def test_two_gateways_share_redis_and_one_is_killed(tmp_path: Path, pg_schema: str) -> None:
    redis_server = RedisServer(tmp_path)
    redis_server.start()
    first = write_config(tmp_path, "gw1", pg_schema, redis_server.url)
    second = write_config(tmp_path, "gw2", pg_schema, redis_server.url)
    try:
        first.start()
        second.start()
        pusher = Pusher([first, second])
        pusher.start()
        assert 0 < wait_for_rows(pg_schema, 2000, 90) < RECORDS
        first.kill()  # not restarted: the second reclaims its pending entries and relays its rows
        assert_exactly_once(pg_schema, pusher)
    finally:
        first.stop()
        second.stop()
        redis_server.stop()
