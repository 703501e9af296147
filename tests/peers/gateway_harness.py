"""A gateway Runtime on SQLite in tmp_path delivering to the data-centre ex_* tables, for tests that
run pull connectors against the peers over sockets."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from gateway.runtime import Runtime
from tests.servers import embedded_runtime


def make_runtime(tmp_path: Path, connectors: list[dict[str, Any]]) -> Runtime:
    return embedded_runtime(tmp_path, connectors)


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
