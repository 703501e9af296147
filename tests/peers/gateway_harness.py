"""A gateway Runtime on SQLite in tmp_path delivering to the data-centre ex_* tables, for tests that
run pull connectors against the peers over sockets."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from gateway.runtime import Runtime
from gateway.settings import load_settings
from tests.conftest import MAPPINGS


def make_runtime(tmp_path: Path, connectors: list[dict[str, Any]]) -> Runtime:
    config = {
        "mappings_dir": str(MAPPINGS),
        "stores": {"database_url": f"sqlite:///{tmp_path / 'gateway.sqlite'}"},
        "connectors": connectors,
        "adapters": [{"id": "data-centre", "type": "data_centre",
                      "options": {"url": f"sqlite:///{tmp_path / 'dc.sqlite'}", "create_tables": True}}],
        "routing": [{"kinds": ["*"], "adapters": ["data-centre"]}],
    }
    path = tmp_path / "gateway.yaml"
    path.write_text(json.dumps(config), encoding="utf-8")
    return Runtime(load_settings(path, environ={}))


@asynccontextmanager
async def running(runtime: Runtime) -> AsyncIterator[Runtime]:
    await runtime.start()
    try:
        yield runtime
    finally:
        await runtime.stop()


async def wait_for(predicate: Callable[[], bool], timeout_s: float = 20.0, what: str = "condition") -> None:
    """Bounded polling: the connector's progress cannot be awaited from outside."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def ex_rows(tmp_path: Path, table: str, columns: str = "cd_id, cd_operation, record_unique_identity") -> list[Any]:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'dc.sqlite'}")
    try:
        with engine.connect() as conn:
            return list(conn.execute(sa.text(f"SELECT {columns} FROM {table}")).all())
    finally:
        engine.dispose()
