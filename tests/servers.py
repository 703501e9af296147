"""Real servers for integration tests: the gateway behind uvicorn on a free local port."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn

from gateway.cli.run_cmd import build_app
from gateway.runtime import Runtime
from tests.conftest import free_port


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
