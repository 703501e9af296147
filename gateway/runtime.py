"""The running gateway: stores, publisher, connectors and delivery workers, wired from settings.

``Runtime.start()`` opens the stores and starts every connector and worker under a supervisor;
``stop()`` cancels them and closes what they hold. The HTTP app's lifespan drives both.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import date
from functools import partial

from connectors.base import ConnectorContext, HeldLease
from gateway.api.state import ApiState
from gateway.assembly import Assembly, assemble
from gateway.delivery import DeliveryWorker
from gateway.durable import SqlGatewayStore
from gateway.hooks import Hooks
from gateway.ingest import Ingestor
from gateway.publisher import Publisher
from gateway.settings import Settings
from gateway.stores.connector_state import SqlConnectorState
from gateway.stores.db import create_engine_for, init_schema
from gateway.supervise import supervise
from mapping.calendar import WorkingCalendar
from monitoring.metrics import PrometheusHooks

log = logging.getLogger(__name__)


class Runtime:
    def __init__(self, settings: Settings, *, today_fn: Callable[[], date] | None = None) -> None:
        self.settings = settings
        self.engine = create_engine_for(settings.stores.database_url)
        self.assembly: Assembly = assemble(settings, self._connector_context)
        self.metrics = PrometheusHooks()
        self.hooks: Hooks = self.metrics
        self.calendar = WorkingCalendar(settings.calendar.extra_holidays, settings.calendar.extra_workdays)
        self.store = SqlGatewayStore(self.engine, self.calendar)
        self.workers = {
            a.id: DeliveryWorker(a.id, self.assembly.adapters[a.id], self.store, batch_size=a.batch_size,
                                 max_wait_s=a.max_wait_s, hooks=self.hooks)
            for a in settings.adapters if a.enabled
        }
        self.publisher = Publisher(
            ingestor=Ingestor(uscc_exceptions=frozenset(settings.uscc_exceptions), today_fn=today_fn),
            mappings=self.assembly.connector_mappings,
            store=self.store,
            routes=settings.adapters_for,
            hooks=self.hooks,
            on_written=self._wake_workers,
            connector_meta={c.id: c.meta for c in settings.connectors if c.meta},
        )
        self._tasks: list[asyncio.Task[None]] = []

    def _connector_context(self, connector_id: str) -> ConnectorContext:
        return ConnectorContext(state=SqlConnectorState(self.engine, connector_id), lease=HeldLease())

    def _wake_workers(self) -> None:
        for worker in self.workers.values():
            worker.notify()

    def api_state(self) -> ApiState:
        push = {c.id: c for c in self.settings.connectors
                if c.enabled and getattr(self.assembly.connectors.get(c.id), "pushes_over_http", False)}
        return ApiState(api=self.settings.api, publisher=self.publisher, push_connectors=push,
                        departments=self.settings.departments, metrics_exposition=self.metrics.exposition,
                        readiness={"database": self.store.ping})

    async def start(self) -> None:
        await asyncio.to_thread(init_schema, self.engine)
        for adapter in self.assembly.adapters.values():
            if (prepare := getattr(adapter, "prepare", None)) is not None:
                await prepare()
        for worker in self.workers.values():
            self._spawn(f"adapter {worker.adapter_id}", worker.run)
        for connector_id, connector in self.assembly.connectors.items():
            self._spawn(f"connector {connector_id}", partial(connector.run, self.publisher))
        log.info("gateway started: %d connectors, %d adapters", len(self.assembly.connectors), len(self.workers))

    def _spawn(self, name: str, run: Callable[[], Awaitable[None]]) -> None:
        self._tasks.append(asyncio.create_task(supervise(name, run), name=name))

    async def drain(self, timeout_s: float = 30.0) -> None:
        """Deliver what is queued (for the demo and tests): run every worker until its outbox is empty."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while loop.time() < deadline:
            delivered = 0
            for worker in self.workers.values():
                delivered += await worker.run_once()
            if delivered == 0 and await asyncio.to_thread(self.store.ready_depth) == 0:
                return
            if delivered == 0:
                await asyncio.sleep(0.05)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        for adapter in self.assembly.adapters.values():
            await adapter.close()
        await asyncio.to_thread(self.engine.dispose)
