"""Crash safety over real processes: gateways (``python -m gateway.cli run``) killed with SIGKILL in
the middle of delivery, restarted; the data centre on the real PostgreSQL and the fake national
platform (over HTTP, signed, in a thread of the test) must then each hold every accepted record
exactly once (record ids compared): nothing lost, nothing stored twice at either target.

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
from tests.peers.national_platform_server import APP_ID, APP_SECRET, NationalPlatformServer
from tests.peers.threaded import ThreadedPeer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

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


@pytest.fixture
def national() -> Iterator[ThreadedPeer[NationalPlatformServer]]:
    with ThreadedPeer(NationalPlatformServer()) as peer:
        yield peer


def write_config(tmp_path: Path, name: str, schema: str, national_url: str, redis_url: str | None = None) -> Gateway:
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
                     "circuit_max_open_s": 2, "relay_interval_s": 0.5, "max_attempts": 1000},
        "departments": [{"code": "eco-a", "name": "生态环境甲", "api_key_hashes": [hash_api_key(KEY)]}],
        "connectors": [{"id": "eco-push", "type": "http_push", "mapping": "eco-rest.penalty", "department": "eco-a"}],
        "adapters": [{"id": "data-centre", "type": "data_centre", "batch_size": 100,
                      "options": {"url": "postgresql://postgres@127.0.0.1:5432/test", "db_schema": schema,
                                  "create_tables": True}},
                     {"id": "national", "type": "national_platform", "batch_size": 100,
                      "options": {"base_url": national_url, "app_id": APP_ID, "app_secret": APP_SECRET}}],
        "routing": [{"kinds": ["*"], "adapters": ["data-centre", "national"]}],
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


def held_by_national(national: ThreadedPeer[NationalPlatformServer]) -> dict[str, int]:
    """record_id -> times the platform stored it (a replayed batch_id is answered, not stored again)."""

    async def snapshot() -> dict[str, int]:
        return dict(national.peer.stored)

    return national.call(snapshot())


def wait_for_rows(schema: str, at_least: int, timeout_s: float,
                  national: ThreadedPeer[NationalPlatformServer] | None = None) -> int:
    """Rows in the data centre (and records at the national platform) once both reach ``at_least``."""
    deadline = time.monotonic() + timeout_s
    count = 0
    while time.monotonic() < deadline:
        count, _ = delivered(schema)
        if national is not None:
            count = min(count, len(held_by_national(national)))
        if count >= at_least:
            return count
        time.sleep(0.1)
    return count


def assert_exactly_once(schema: str, pusher: Pusher, national: ThreadedPeer[NationalPlatformServer],
                        timeout_s: float = 120) -> None:
    pusher.join(timeout=150)
    assert pusher.error is None, pusher.error
    assert len(pusher.accepted) == RECORDS
    wait_for_rows(schema, RECORDS, timeout_s, national)
    time.sleep(1.0)  # anything delivered twice would show up now
    count, ids = delivered(schema)
    assert count == len(ids), "a record was written twice to the data centre"
    assert ids == pusher.accepted, (len(ids - pusher.accepted), len(pusher.accepted - ids))
    stored = held_by_national(national)
    twice = {rid: n for rid, n in stored.items() if n != 1}
    assert not twice, f"{len(twice)} records stored more than once by the national platform"
    assert set(stored) == pusher.accepted, (len(set(stored) - pusher.accepted), len(pusher.accepted - set(stored)))


def mid_delivery(schema: str, national: ThreadedPeer[NationalPlatformServer]) -> None:
    """Wait until both targets have part of the records, not all: the kill must land mid-delivery."""
    assert 0 < wait_for_rows(schema, 2000, 90, national) < RECORDS, "the kill should land mid-delivery"


# --- the tests -----------------------------------------------------------------------------------

def test_embedded_gateway_killed_mid_delivery_loses_and_duplicates_nothing(
        tmp_path: Path, pg_schema: str, national: ThreadedPeer[NationalPlatformServer]) -> None:
    gateway = write_config(tmp_path, "gw", pg_schema, national.url)
    gateway.start()
    try:
        pusher = Pusher([gateway])
        pusher.start()
        mid_delivery(pg_schema, national)
        gateway.kill()
        gateway.start()
        assert_exactly_once(pg_schema, pusher, national)
    finally:
        gateway.stop()


def test_national_platform_down_30_s_and_the_gateway_killed_meanwhile_loses_and_duplicates_nothing(
        tmp_path: Path, pg_schema: str, national: ThreadedPeer[NationalPlatformServer]) -> None:
    gateway = write_config(tmp_path, "gw", pg_schema, national.url)
    gateway.start()
    try:
        pusher = Pusher([gateway])
        pusher.start()
        mid_delivery(pg_schema, national)

        async def outage() -> None:
            national.peer.unavailable_for(30, retry_after_s=1)

        national.call(outage())
        outage_ends = time.monotonic() + 30
        time.sleep(5)  # the breaker opens, the data centre carries on, retries are rescheduled durably
        gateway.kill()
        gateway.start()
        assert time.monotonic() < outage_ends, "the restart should land inside the outage"
        assert_exactly_once(pg_schema, pusher, national, timeout_s=150)
        assert 503 in national.call(_statuses(national.peer))
    finally:
        gateway.stop()


async def _statuses(peer: NationalPlatformServer) -> list[int]:
    return peer.statuses()


def test_redis_gateway_killed_mid_delivery_loses_and_duplicates_nothing(
        tmp_path: Path, pg_schema: str, national: ThreadedPeer[NationalPlatformServer]) -> None:
    redis_server = RedisServer(tmp_path)
    redis_server.start()
    gateway = write_config(tmp_path, "gw", pg_schema, national.url, redis_server.url)
    try:
        gateway.start()
        pusher = Pusher([gateway])
        pusher.start()
        mid_delivery(pg_schema, national)
        gateway.kill()
        gateway.start()
        assert_exactly_once(pg_schema, pusher, national)
    finally:
        gateway.stop()
        redis_server.stop()


def test_redis_killed_and_restarted_mid_delivery_loses_and_duplicates_nothing(
        tmp_path: Path, pg_schema: str, national: ThreadedPeer[NationalPlatformServer]) -> None:
    redis_server = RedisServer(tmp_path)
    redis_server.start()
    gateway = write_config(tmp_path, "gw", pg_schema, national.url, redis_server.url)
    try:
        gateway.start()
        pusher = Pusher([gateway])
        pusher.start()
        mid_delivery(pg_schema, national)
        redis_server.kill()
        time.sleep(1.0)  # the gateway keeps acknowledging (SQL commit) and fails to hand on meanwhile
        redis_server.start()
        assert_exactly_once(pg_schema, pusher, national)
    finally:
        gateway.stop()
        redis_server.stop()


def test_two_gateways_share_redis_and_one_is_killed(
        tmp_path: Path, pg_schema: str, national: ThreadedPeer[NationalPlatformServer]) -> None:
    redis_server = RedisServer(tmp_path)
    redis_server.start()
    first = write_config(tmp_path, "gw1", pg_schema, national.url, redis_server.url)
    second = write_config(tmp_path, "gw2", pg_schema, national.url, redis_server.url)
    try:
        first.start()
        second.start()
        pusher = Pusher([first, second])
        pusher.start()
        mid_delivery(pg_schema, national)
        first.kill()  # not restarted: the second reclaims its pending entries and relays its rows
        assert_exactly_once(pg_schema, pusher, national)
    finally:
        first.stop()
        second.stop()
        redis_server.stop()
