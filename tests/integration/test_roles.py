"""Instances of one role: an ingest-only instance runs its connectors and queues what they bring
but delivers nothing; a delivery-only instance, on the same stores and Redis outbox, runs no
connector and delivers everything queued, each record once."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from gateway.runtime import Runtime
from gateway.settings import Settings, with_roles
from tests.conftest import ROOT

pytestmark = pytest.mark.integration

REDIS_URL = "redis://127.0.0.1:6379/0"
SAMPLES = ROOT / "config" / "samples" / "eco-rest"


def settings_for(work: Path, prefix: str) -> Settings:
    return Settings.model_validate({
        "mappings_dir": str(ROOT / "config" / "mappings"),
        "stores": {"database_url": f"sqlite:///{work / 'gateway.sqlite'}", "redis_url": REDIS_URL,
                   "redis_prefix": prefix},
        "connectors": [{"id": "eco-rest", "type": "sample_replay", "mapping": "eco-rest.penalty",
                        "options": {"interval_s": 0, "files": [
                            {"path": str(SAMPLES / "penalties-page-1.json"), "format": "json"},
                            {"path": str(SAMPLES / "penalties-page-2-last.json"), "format": "json"}]}}],
        "adapters": [{"id": "data-centre", "type": "data_centre", "max_wait_s": 0.05,
                      "options": {"url": f"sqlite:///{work / 'datacentre.sqlite'}", "create_tables": True}}],
        "routing": [{"kinds": ["*"], "adapters": ["data-centre"]}],
    })


async def wait_for(condition: Callable[[], Any], timeout_s: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not await asyncio.to_thread(condition):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


def penalty_rows(work: Path) -> int:
    engine = sa.create_engine(f"sqlite:///{work / 'datacentre.sqlite'}")
    try:
        with engine.connect() as conn:
            if not sa.inspect(conn).has_table("ex_penalty"):
                return 0
            rows, distinct = conn.execute(sa.text("SELECT count(*), count(DISTINCT cd_id) FROM ex_penalty")).one()
            assert rows == distinct, f"{rows - distinct} records written twice"
            return int(rows)
    finally:
        engine.dispose()


async def replayed(ingest: Runtime) -> int:
    """Wait until the ingest instance has replayed its sample penalties; how many it accepted."""
    replay = ingest.assembly.connectors["eco-rest"]
    await asyncio.wait_for(replay.done.wait(), timeout=30)
    accepted = ingest.store.totals()["accepted"]
    assert accepted > 0
    return int(accepted)


async def test_ingest_and_delivery_instances_split_the_work(tmp_path: Path, redis_prefix: str) -> None:
    settings = settings_for(tmp_path, redis_prefix)
    ingest = Runtime(with_roles(settings, ("ingest",)))
    await ingest.start()
    try:
        accepted = await replayed(ingest)
        assert ingest.store.depth() == accepted  # queued for the data centre, nobody delivering
        assert penalty_rows(tmp_path) == 0

        delivery = Runtime(with_roles(settings, ("delivery",)))
        await delivery.start()
        try:
            assert not delivery.live.running("eco-rest")  # a delivery instance runs no connector
            await wait_for(lambda: penalty_rows(tmp_path) == accepted)
            await wait_for(lambda: delivery.store.depth() == 0)
            assert delivery.store.totals()["accepted"] == accepted  # it ingested nothing of its own
        finally:
            await delivery.stop()
        assert penalty_rows(tmp_path) == accepted  # each record once
    finally:
        await ingest.stop()


def test_roles_are_validated() -> None:
    assert Settings.model_validate({"roles": "delivery, ingest"}).roles == ("delivery", "ingest")
    with pytest.raises(Exception, match="roles"):
        with_roles(Settings(), ("dispatch",))
    with pytest.raises(Exception, match="at least 1"):
        Settings.model_validate({"roles": []})
