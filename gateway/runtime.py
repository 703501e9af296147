"""The running gateway: stores, publisher, connectors and delivery workers, wired from settings.

``Runtime.start()`` opens the stores and starts every connector and worker under a supervisor;
``stop()`` cancels them and closes what they hold. The HTTP app's lifespan drives both.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable
from datetime import date

from adapters.journal import BatchJournaling
from connectors.base import ConnectorContext, HeldLease, PollLease
from gateway.api.authz import ChainedPrincipals, SettingsPrincipals, StoredPrincipals
from gateway.api.state import ApiState
from gateway.assembly import Assembly, assemble
from gateway.circuit import CircuitBreaker
from gateway.connector_admin import ConnectorAdmin
from gateway.dead_letters import DeadLetterOps
from gateway.delivery import DeliveryWorker, RetryPolicy
from gateway.departments import open_desk
from gateway.durable import SqlGatewayStore
from gateway.errors import StoreUnavailable
from gateway.hooks import Hooks
from gateway.ingest import Ingestor
from gateway.leases import poll_lease_for
from gateway.live_connectors import LiveConnectors
from gateway.map_pool import MapPool
from gateway.ops_view import ops_view_of
from gateway.outbox_news import OutboxNews
from gateway.publisher import Publisher
from gateway.routing_table import RoutingTable
from gateway.settings import ConnectorSettings, RouteSettings, Settings
from gateway.stores.api_keys import KeyStore
from gateway.stores.audit import SqlAuditLog
from gateway.stores.connector_state import SqlConnectorState
from gateway.stores.db import checkpoint_wal, create_engine_for, init_schema, is_sqlite_file
from gateway.stores.outbox import Outbox
from gateway.stores.redis_outbox import RedisOutbox
from gateway.stores.registry import SqlRegistry
from gateway.stores.sent_batches import RedisBatchJournal, SqlBatchJournal
from gateway.supervise import supervise
from gateway.target_feedback import FeedbackIntake
from gateway.telemetry import ConnectorTelemetryTable, CountingHooks
from mapping.calendar import WorkingCalendar
from monitoring.metrics import PrometheusHooks

log = logging.getLogger(__name__)

CHECKPOINT_INTERVAL_S = 0.25  # SQLite: how often the WAL is looked at (checkpointed past WAL_CHECKPOINT_BYTES)
POLL_LEASE_TTL_S = 30.0  # pollers renew every ~10 s; another instance takes over 30 s after a holder dies


class Runtime:
    def __init__(self, settings: Settings, *, today_fn: Callable[[], date] | None = None) -> None:
        self.settings = settings
        self.configured = settings  # as the config file says; ``settings`` follows the registry once started
        self.engine = create_engine_for(settings.stores.database_url)
        self.metrics = PrometheusHooks()
        self.hooks: Hooks = self.metrics
        self.telemetry = ConnectorTelemetryTable(self.hooks)
        self.assembly: Assembly = assemble(settings, self._connector_context)
        self.calendar = WorkingCalendar(settings.calendar.extra_holidays, settings.calendar.extra_workdays)
        self.redis_outbox = self._redis_outbox(settings)
        outbox: Outbox | None = self.redis_outbox
        # With Redis, ingest and delivery may be apart: queued records are announced to every instance.
        self.news = None if settings.stores.redis_url is None else OutboxNews.from_url(
            settings.stores.redis_url.get_secret_value(), settings.stores.redis_prefix)
        self.store = SqlGatewayStore(self.engine, self.calendar, outbox=outbox, lease_s=settings.delivery.lease_s)
        self.workers = {a.id: self._worker(a.id, a.batch_size, a.max_wait_s) for a in settings.adapters if a.enabled}
        self._redis_journals = self._attach_journals(settings)
        self.audit = SqlAuditLog(self.engine)
        self.ops = DeadLetterOps(self.store, on_redriven=self._wake_workers, audit=self.audit)
        self.routing = RoutingTable(settings.routing, [a.id for a in settings.adapters if a.enabled])
        self.map_pool = MapPool(settings.ingest.map_processes, uscc_exceptions=frozenset(settings.uscc_exceptions),
                                min_records=settings.ingest.map_min_records) \
            if settings.ingest.map_processes and "ingest" in settings.roles else None
        self.publisher = Publisher(
            ingestor=Ingestor(uscc_exceptions=frozenset(settings.uscc_exceptions), today_fn=today_fn),
            mappings=self.assembly.connector_mappings,
            store=self.store,
            routes=self.routing.adapters_for,
            hooks=CountingHooks(self.hooks, self.telemetry),
            on_written=self._records_queued,
            connector_meta={c.id: c.meta for c in settings.connectors if c.meta},
            map_pool=self.map_pool,
        )
        self.ops_view = ops_view_of(self)
        self.stored_principals = StoredPrincipals(KeyStore(self.engine))
        self.desk = open_desk(self.engine, self.store.rejections, self.audit,
                              connectors_of=lambda: {c.id: c.department for c in self.settings.connectors},
                              on_keys_changed=self.stored_principals.forget)
        self.registry = SqlRegistry(self.engine)
        self.live = LiveConnectors(
            registry=self.registry, publisher=self.publisher, telemetry=self.telemetry,
            context_for=self._connector_context, mappings_dir=settings.mappings_dir,
            connectors=[c for c in settings.connectors], instances=self.assembly.connectors,
            connector_mappings=self.assembly.connector_mappings, catalog=self.assembly.catalog,
            routing=self.routing, adapters=list(self.workers), on_change=self._registry_changed)
        self._tasks: list[asyncio.Task[None]] = []
        self._worker_tasks: list[asyncio.Task[None]] = []

    def _registry_changed(self, connectors: tuple[ConnectorSettings, ...], routes: tuple[RouteSettings, ...]) -> None:
        """Connectors and routing as the registry has them now, for whoever reads ``settings``."""
        self.settings = self.settings.model_copy(update={"connectors": connectors, "routing": routes})

    @staticmethod
    def _redis_outbox(settings: Settings) -> RedisOutbox | None:
        if settings.stores.redis_url is None:
            return None
        # Unique per process: a restarted process must not pose as the dead one (its entries are reclaimed).
        consumer = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        return RedisOutbox.from_url(settings.stores.redis_url.get_secret_value(), prefix=settings.stores.redis_prefix,
                                    consumer=consumer, lease_s=settings.delivery.lease_s)

    def _attach_journals(self, settings: Settings) -> list[RedisBatchJournal]:
        """Adapters that journal their batches keep the journal where the outbox is (the Redis
        ones are returned, to be closed)."""
        opened: list[RedisBatchJournal] = []
        for adapter_id, adapter in self.assembly.adapters.items():
            if not isinstance(adapter, BatchJournaling):
                continue
            if settings.stores.redis_url is None:
                adapter.use_journal(SqlBatchJournal(self.engine, adapter_id))
                continue
            journal = RedisBatchJournal.from_url(settings.stores.redis_url.get_secret_value(),
                                                 prefix=settings.stores.redis_prefix, adapter=adapter_id)
            opened.append(journal)
            adapter.use_journal(journal)
        return opened

    def _worker(self, adapter_id: str, batch_size: int, max_wait_s: float) -> DeliveryWorker:
        d = self.settings.delivery
        policy = RetryPolicy(first_delay_s=d.first_backoff_s, max_delay_s=d.max_backoff_s,
                             max_attempts=d.max_attempts, max_age_s=d.max_age_s)
        breaker = CircuitBreaker(failure_threshold=d.circuit_failures, open_s=d.circuit_open_s,
                                 max_open_s=d.circuit_max_open_s)
        return DeliveryWorker(adapter_id, self.assembly.adapters[adapter_id], self.store, batch_size=batch_size,
                              max_wait_s=max_wait_s, policy=policy, hooks=self.hooks, breaker=breaker,
                              linger_s=d.linger_s)

    def _connector_context(self, connector_id: str) -> ConnectorContext:
        """Durable state in the gateway's store; with Redis, a poll lease shared by every instance, so
        only one of them polls a given connector (embedded, one process: always held)."""
        redis_url = self.settings.stores.redis_url
        lease: PollLease = HeldLease() if redis_url is None else poll_lease_for(
            redis_url.get_secret_value(), connector_id, POLL_LEASE_TTL_S,
            key_prefix=f"{self.settings.stores.redis_prefix}:lease:")
        return ConnectorContext(state=SqlConnectorState(self.engine, connector_id), lease=lease,
                                telemetry=self.telemetry.get(connector_id),
                                instance=self.settings.instance_id or _host_name())

    def _wake_workers(self) -> None:
        for worker in self.workers.values():
            worker.notify()

    def _records_queued(self) -> None:
        self._wake_workers()
        if self.news is not None:
            self.news.announce()  # for the delivery instances elsewhere

    def connector_admin(self) -> ConnectorAdmin:
        return ConnectorAdmin(self.registry, self.live, mappings_dir=self.settings.mappings_dir,
                              ingestor=Ingestor(uscc_exceptions=frozenset(self.settings.uscc_exceptions)),
                              department_exists=self._department_exists, audit=self.audit,
                              adapters=tuple(self.workers))

    def _department_exists(self, code: str) -> bool:
        return any(d.code == code for d in self.settings.departments) \
            or self.desk.service.departments.get(code) is not None

    def api_state(self) -> ApiState:
        readiness = {"database": self.store.ping}
        if self.redis_outbox is not None:
            readiness["outbox"] = self.redis_outbox.ping
        return ApiState(api=self.settings.api, publisher=self.publisher, push_connectors=self.live.push_connectors,
                        departments=self.settings.departments, metrics_exposition=self.metrics.exposition,
                        readiness=readiness, ops=self.ops, ops_view=self.ops_view,
                        push_plugins=self.live.push_plugins, paused_connectors=self.live.paused,
                        connector_admin=self.connector_admin(),
                        audit=self.audit, desk=self.desk, principals=ChainedPrincipals(
                            [SettingsPrincipals(self.settings.api, self.settings.departments), self.stored_principals]))

    async def start(self) -> None:
        await asyncio.to_thread(init_schema, self.engine)
        await asyncio.to_thread(self.desk.service.departments.seed, self.settings.departments)
        await self.live.seed(self.configured.connectors, self.configured.routing)
        for adapter in self.assembly.adapters.values():
            if (prepare := getattr(adapter, "prepare", None)) is not None:
                await prepare()
        if self.redis_outbox is not None:
            await self._relay_once()
            self._spawn("outbox relay", self._relay_forever)
        if is_sqlite_file(self.engine):
            self._spawn("wal checkpoints", self._checkpoint_forever)
        if "delivery" in self.settings.roles:
            self._start_delivery()
            if (news := self.news) is not None:
                self._spawn("outbox news", lambda: news.listen(self._wake_workers))
        if "ingest" in self.settings.roles:
            if self.map_pool is not None:
                await self.map_pool.start()
            await self.live.start()
            self._spawn("registry watch", self.live.watch)
        log.info("gateway started (%s): %d connectors, %d adapters", "+".join(self.settings.roles),
                 len(self.live.settings) if "ingest" in self.settings.roles else 0,
                 len(self.workers) if "delivery" in self.settings.roles else 0)

    def _start_delivery(self) -> None:
        for worker in self.workers.values():
            self._worker_tasks.append(self._spawn(f"adapter {worker.adapter_id}", worker.run))
        for adapter_id in self.workers:  # targets that check records later and report back (ex_feedback)
            if (source := getattr(self.assembly.adapters[adapter_id], "feedback_source", lambda: None)()) is not None:
                intake = FeedbackIntake(adapter_id, source, self.engine, self.calendar)
                self._spawn(f"feedback {adapter_id}", intake.run)

    def _spawn(self, name: str, run: Callable[[], Awaitable[None]]) -> asyncio.Task[None]:
        task = asyncio.create_task(supervise(name, run), name=name)
        self._tasks.append(task)
        return task

    async def _relay_once(self) -> None:
        try:
            moved = await asyncio.to_thread(self.store.relay)
        except StoreUnavailable as exc:
            log.warning("outbox relay: %s", exc)
            return
        if moved:
            log.info("outbox relay: %d committed records handed to redis", moved)
            self._records_queued()

    async def _relay_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.delivery.relay_interval_s)
            await self._relay_once()

    async def _checkpoint_forever(self) -> None:
        while True:
            await asyncio.sleep(CHECKPOINT_INTERVAL_S)
            await asyncio.to_thread(checkpoint_wal, self.engine)

    async def drain(self, timeout_s: float = 30.0) -> None:
        """Deliver what is queued (for the demo and tests): run every worker until its outbox is empty."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while loop.time() < deadline:
            delivered = 0
            for worker in self.workers.values():
                delivered += await worker.run_once()
            if delivered == 0 and await asyncio.to_thread(self.store.depth) == 0:
                return
            if delivered == 0:
                await asyncio.sleep(0.05)

    async def stop(self) -> None:
        """Let every worker finish its batch in hand (up to the grace period), then cancel the rest:
        a batch cut off is returned to the outbox, due at once."""
        for worker in self.workers.values():
            worker.request_stop()
        if self._worker_tasks:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(asyncio.gather(*self._worker_tasks, return_exceptions=True)),
                                       timeout=self.settings.delivery.shutdown_grace_s)
        self._worker_tasks.clear()
        await self.live.stop()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if self.map_pool is not None:
            await asyncio.to_thread(self.map_pool.close)
        for adapter in self.assembly.adapters.values():
            await adapter.close()
        await asyncio.to_thread(self.engine.dispose)
        if self.redis_outbox is not None:
            self.redis_outbox.close()
        if self.news is not None:
            await self.news.close()
        for journal in self._redis_journals:
            journal.close()


def _host_name() -> str:
    """The host's name as an instance name: letters, digits, '.', '_' and '-' only."""
    return "".join(c if (c.isascii() and c.isalnum()) or c in "._-" else "-" for c in socket.gethostname())[:40]
