"""Durable connector state (cursors, windows, file checkpoints), one JSON value per (connector, key).

A connector saves its cursor only after ``publish`` returned for the page it read, so a crash
re-reads at most the last page, and ingest drops what was already accepted as duplicates.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, delete, select

from gateway.stores.db import translate_errors
from gateway.stores.records import insert_ignoring_conflicts
from gateway.stores.schema import connector_state


class SqlConnectorState:
    def __init__(self, engine: Engine, connector: str) -> None:
        self._engine = engine
        self._connector = connector

    async def load(self, key: str) -> Any:
        return await asyncio.to_thread(self._load, key)

    async def save(self, key: str, value: Any) -> None:
        await asyncio.to_thread(self._save, key, value)

    async def clear(self, key: str) -> None:
        await asyncio.to_thread(self._clear, key)

    def _load(self, key: str) -> Any:
        with translate_errors("reading connector state"), self._engine.connect() as conn:
            return conn.execute(select(connector_state.c.value).where(
                connector_state.c.connector == self._connector, connector_state.c.key == key)).scalar_one_or_none()

    def _save(self, key: str, value: Any) -> None:
        now = datetime.now(UTC)
        with translate_errors("saving connector state"), self._engine.begin() as conn:
            inserted = conn.execute(insert_ignoring_conflicts(conn, connector_state, ["connector", "key"]).values(
                connector=self._connector, key=key, value=value, updated_at=now))
            if not inserted.rowcount:
                conn.execute(connector_state.update().where(
                    connector_state.c.connector == self._connector, connector_state.c.key == key
                ).values(value=value, updated_at=now))

    def _clear(self, key: str) -> None:
        with translate_errors("clearing connector state"), self._engine.begin() as conn:
            conn.execute(delete(connector_state).where(
                connector_state.c.connector == self._connector, connector_state.c.key == key))
