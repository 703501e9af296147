"""``sgw run``: the gateway, with its HTTP API, until interrupted."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from gateway.api.app import create_app
from gateway.gc_tuning import tune_for_throughput
from gateway.runtime import Runtime
from gateway.settings import Settings, load_settings, with_roles
from monitoring.logs import configure_logging


def build_app(runtime: Runtime) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    return create_app(runtime.api_state(), lifespan=lifespan)


def serve(settings: Settings, runtime: Runtime) -> None:
    app = build_app(runtime)
    tune_for_throughput()  # the runtime's tables are built: out of the collector's way from here on
    uvicorn.run(app, host=settings.api.host, port=settings.api.port, log_config=None)


def run(config: Path | None, *, roles: tuple[str, ...] | None = None) -> None:
    settings = load_settings(config)
    if roles is not None:  # validated like the config file's ``roles``
        settings = with_roles(settings, roles)
    configure_logging(settings.logging.level, json_format=settings.logging.json_format)
    serve(settings, Runtime(settings))
