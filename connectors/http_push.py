"""Push over HTTP: sources POST JSON to ``/ingest/{connector}``.

The HTTP side lives in the gateway's API (one server for every push connector); this plugin holds
the connector's options and has nothing to poll, so ``run`` just waits to be cancelled.
"""

from __future__ import annotations

import asyncio
from typing import ClassVar

from pydantic import BaseModel, ConfigDict

from connectors.base import ConnectorContext, Publish


class HttpPushConnector:
    class Config(BaseModel):
        model_config = ConfigDict(extra="forbid", frozen=True)

    pushes_over_http: ClassVar[bool] = True

    def __init__(self, connector_id: str, config: Config, context: ConnectorContext) -> None:
        self.connector_id = connector_id
        self.config = config

    async def run(self, publish: Publish) -> None:
        await asyncio.Event().wait()
