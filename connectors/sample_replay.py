"""Replays sample files as if their source had sent them: the demo's sources.

Each file is decoded with its format and published as one envelope with the file's metadata,
the way the real connector of that source would (a page, a file, a message).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from connectors.base import ConnectorContext, Publish
from connectors.codecs import decode
from connectors.file_meta import file_meta
from gateway.envelope import Envelope
from gateway.errors import PayloadError, StoreUnavailable

log = logging.getLogger(__name__)


class SampleFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    path: Path
    format: str
    variant: str = "default"


class SampleReplayConnector:
    class Config(BaseModel):
        model_config = ConfigDict(extra="forbid", frozen=True)
        files: tuple[SampleFile, ...] = Field(min_length=1)
        interval_s: float = Field(default=0.2, ge=0)
        repeat: bool = False
        meta: dict[str, Any] = Field(default_factory=dict)

    pushes_over_http: ClassVar[bool] = False

    def __init__(self, connector_id: str, config: Config, context: ConnectorContext) -> None:
        self.connector_id = connector_id
        self.config = config
        self.done = asyncio.Event()

    async def run(self, publish: Publish) -> None:
        while True:
            for sample in self.config.files:
                await self._replay(sample, publish)
                await asyncio.sleep(self.config.interval_s)
            self.done.set()
            if not self.config.repeat:
                return

    async def _replay(self, sample: SampleFile, publish: Publish) -> None:
        data = await asyncio.to_thread(sample.path.read_bytes)
        try:
            payload = decode(sample.format, data)
        except PayloadError as exc:
            log.warning("sample %s refused: %s %s", sample.path.name, exc.code, exc)
            return
        meta = {**file_meta(sample.path), **self.config.meta, "variant": sample.variant}
        envelope = Envelope(connector=self.connector_id, payload=payload, received_at=datetime.now(UTC),
                            meta=meta, raw=data)
        try:
            receipt = await publish(envelope)
        except StoreUnavailable as exc:
            log.warning("store unavailable; %s not acknowledged: %s", sample.path.name, exc.__cause__ or exc)
            return
        log.info("replayed %s: %d accepted, %d rejected, %d duplicate", sample.path.name,
                 receipt.accepted, receipt.rejected, receipt.duplicate)
