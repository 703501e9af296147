"""Real servers for integration tests: the gateway behind uvicorn on a free local port."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import uvicorn

from gateway.cli.run_cmd import build_app
from gateway.runtime import Runtime
from gateway.settings import load_settings
from tests.conftest import MAPPINGS, free_port


def embedded_runtime(tmp_path: Path, connectors: list[dict[str, Any]], **sections: Any) -> Runtime:
    """A gateway on SQLite in ``tmp_path`` with the repository's mappings and the data centre as its
    one target; ``sections`` adds or replaces config sections (``departments``, ``api``...)."""
    config = {
        "mappings_dir": str(MAPPINGS),
        "stores": {"database_url": f"sqlite:///{tmp_path / 'gateway.sqlite'}"},
        "connectors": connectors,
        "adapters": [{"id": "data-centre", "type": "data_centre",
                      "options": {"url": f"sqlite:///{tmp_path / 'dc.sqlite'}", "create_tables": True}}],
        "routing": [{"kinds": ["*"], "adapters": ["data-centre"]}],
        **sections,
    }
    path = tmp_path / "gateway.yaml"
    path.write_text(json.dumps(config), encoding="utf-8")
    return Runtime(load_settings(path, environ={}))


@asynccontextmanager
async def serving(runtime: Runtime) -> AsyncIterator[str]:
    """The runtime behind a real uvicorn server; yields the base URL. Lifespan starts and stops it."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(build_app(runtime), host="127.0.0.1", port=port,
                                           log_level="warning", log_config=None, lifespan="on"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            await task
            raise RuntimeError("the server stopped before it started")
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=10)
