"""Connectors while the gateway runs: made to match the registry without a restart.

``reconcile`` reads the registry and brings what runs in line with it: a new connector is built
and started, a changed one is stopped and rebuilt from its new settings, a removed one stopped
and forgotten, a paused one stopped (a poller's cursor is in its durable state, so it resumes
where it stopped), a new mapping version swapped into the publisher's table, a new routing
swapped into the routing table. The admin API calls it after each change; a watcher calls it when
the registry's revision moves (a change made by another instance or by ``sgw connectors apply``).

Push connectors are kept in ``push_connectors``/``push_plugins``/``paused``, the very mappings the
HTTP API reads, so a push connector appears, pauses and disappears for ``/ingest`` at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from connectors.base import ConnectorContext
from gateway.assembly import assemble_connector, connector_mappings_of
from gateway.errors import ConfigError, PermanentError
from gateway.mapping_versions import catalog_from
from gateway.publisher import Publisher
from gateway.routing_table import RoutingTable, route_problems
from gateway.settings import ConnectorSettings, RouteSettings
from gateway.stores.registry import ConnectorRow, MappingVersion, RoutingRow, SqlRegistry
from gateway.supervise import supervise
from gateway.telemetry import ConnectorTelemetryTable
from mapping.compiler import CompiledMapping

log = logging.getLogger(__name__)

REGISTRY_POLL_S = 3.0
PROBE_TIMEOUT_S = 15.0


@dataclass(frozen=True, slots=True)
class _Snapshot:
    revision: int
    connectors: list[ConnectorRow]
    mappings: list[MappingVersion]
    routing: RoutingRow | None


class LiveConnectors:
    def __init__(self, *, registry: SqlRegistry, publisher: Publisher, telemetry: ConnectorTelemetryTable,
                 context_for: Callable[[str], ConnectorContext], mappings_dir: Path,
                 connectors: Sequence[ConnectorSettings], instances: Mapping[str, Any],
                 connector_mappings: Mapping[str, Mapping[str, CompiledMapping]],
                 catalog: Mapping[str, CompiledMapping], routing: RoutingTable, adapters: Sequence[str],
                 on_change: Callable[[tuple[ConnectorSettings, ...], tuple[RouteSettings, ...]], None] | None = None
                 ) -> None:
        self._registry = registry
        self._publisher = publisher
        self.telemetry = telemetry
        self._context_for = context_for
        self._folder = mappings_dir
        self._routing = routing
        self._adapters = tuple(adapters)
        self._on_change = on_change
        self.settings: dict[str, ConnectorSettings] = {c.id: c for c in connectors}
        self._instances: dict[str, Any] = dict(instances)
        self._mappings: dict[str, dict[str, CompiledMapping]] = {k: dict(v) for k, v in connector_mappings.items()}
        self.catalog: dict[str, CompiledMapping] = dict(catalog)
        self._texts: dict[str, tuple[str, CompiledMapping]] = {}
        self.mapping_versions: dict[str, int] = {}
        self.versions: dict[str, int] = {}
        self.routing_version = 0
        self.revision = -1
        # Shared with the HTTP API (ApiState): mutated in place, read on every push.
        self.paused: set[str] = set()
        self.push_connectors: dict[str, ConnectorSettings] = {}
        self.push_plugins: dict[str, object] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._lock = asyncio.Lock()
        self._reconciled = asyncio.Condition()
        self._started = False
        for cid, instance in self._instances.items():
            self._expose(cid, self.settings[cid], instance)

    # -- lifecycle --

    async def seed(self, connectors: Sequence[ConnectorSettings], routes: Sequence[RouteSettings]) -> None:
        """Bring the config file's connectors, routing and mapping files into the registry, then
        follow the registry (what was changed through the API wins; see gateway.stores.registry)."""
        texts = await asyncio.to_thread(
            lambda: {name: m.spec_path.read_text(encoding="utf-8") for name, m in self.catalog.items()})
        self._texts = {name: (text, self.catalog[name]) for name, text in texts.items()}
        report = await asyncio.to_thread(
            self._registry.seed, [c.model_dump(mode="json") for c in connectors], texts,
            [r.model_dump(mode="json") for r in routes])
        if report.connectors_added or report.connectors_updated or report.connectors_removed:
            log.info("registry seeded from the config file: %d added, %d updated, %d removed",
                     len(report.connectors_added), len(report.connectors_updated), len(report.connectors_removed))
        await self.reconcile()

    async def start(self) -> None:
        self._started = True
        await self.reconcile()

    async def stop(self) -> None:
        async with self._lock:
            self._started = False
            for cid in list(self._tasks):
                await self._stop_task(cid, "stopped")

    async def watch(self, interval_s: float = REGISTRY_POLL_S) -> None:
        """Reconcile whenever the registry's revision moves (changes by other instances or the CLI)."""
        while True:
            await asyncio.sleep(interval_s)
            if await asyncio.to_thread(self._registry.revision) != self.revision:
                await self.reconcile()

    # -- what the admin API asks --

    def running(self, connector_id: str) -> bool:
        task = self._tasks.get(connector_id)
        return task is not None and not task.done()

    def status(self, connector_id: str) -> dict[str, Any]:
        status = self.telemetry.get(connector_id).status.as_dict()
        status["paused"] = connector_id in self.paused
        return status

    async def restart(self, connector_id: str) -> bool:
        """Stop and rebuild a connector from its settings (a crashed or stuck one); False: unknown."""
        async with self._lock:
            settings = self.settings.get(connector_id)
            if settings is None:
                return False
            await self._stop_task(connector_id, "stopped")
            self._instances.pop(connector_id, None)
            if settings.enabled:
                self._bring_up(settings)
            return True

    async def probe(self, settings: ConnectorSettings) -> dict[str, Any]:
        """A connection test on a fresh instance with in-memory state (nothing of the running one)."""
        instance, _ = assemble_connector(settings, self.catalog, ConnectorContext())
        probe = getattr(instance, "probe", None)
        if probe is None:
            return {"supported": False, "ok": None,
                    "message_zh": f"连接器类型 {settings.type} 不支持连接测试",
                    "message_en": f"connector type {settings.type!r} does not support a connection test"}
        try:
            detail = await asyncio.wait_for(probe(), timeout=PROBE_TIMEOUT_S)
        except TimeoutError:
            return {"supported": True, "ok": False, "message_en": f"no answer within {PROBE_TIMEOUT_S:.0f} s",
                    "message_zh": f"{PROBE_TIMEOUT_S:.0f} 秒内无应答"}
        except Exception as exc:  # noqa: BLE001 - a failed probe is the answer, whatever the library raised
            return {"supported": True, "ok": False, "error": type(exc).__name__, "message_en": str(exc)[:500],
                    "message_zh": "连接测试失败"}
        return {"supported": True, "ok": True, "detail": detail, "message_zh": "连接正常", "message_en": "connected"}

    def mappings_of(self, settings: ConnectorSettings) -> dict[str, CompiledMapping]:
        problems: list[str] = []
        variants = connector_mappings_of(settings, self.catalog, "connector", problems)
        if problems:
            raise ConfigError(problems)
        return variants

    # -- reconciling --

    def _read(self) -> _Snapshot:
        revision = self._registry.revision()  # first: a change landing meanwhile moves it past what we saw
        return _Snapshot(revision, self._registry.connectors(include_deleted=True),
                         self._registry.current_mappings(), self._registry.routing())

    async def reconcile(self) -> None:
        async with self._lock:
            snapshot = await asyncio.to_thread(self._read)
            changed_mappings = await self._apply_mappings(snapshot.mappings)
            self._apply_routing(snapshot.routing)
            wanted: set[str] = set()
            for row in snapshot.connectors:
                if row.deleted:
                    continue
                wanted.add(row.id)
                self._apply_connector(row, changed_mappings)
            for cid in [c for c in self.settings if c not in wanted]:
                await self._remove(cid)
            for cid, settings in list(self.settings.items()):
                await self._settle(cid, settings)
            self.revision = snapshot.revision
        if self._on_change is not None:
            self._on_change(tuple(self.settings.values()), self._routing.routes)
        async with self._reconciled:
            self._reconciled.notify_all()

    async def wait_for_revision(self, revision: int) -> None:
        """Until the running gateway has applied the registry at ``revision`` or later."""
        async with self._reconciled:
            await self._reconciled.wait_for(lambda: self.revision >= revision)

    async def _apply_mappings(self, rows: list[MappingVersion]) -> set[str]:
        changed = [r for r in rows if self.mapping_versions.get(r.name) != r.version]
        if not changed:
            return set()
        compiled, problems = await asyncio.to_thread(catalog_from, changed, self._folder, self._texts)
        for problem in problems:
            log.error("registry mapping not applied: %s", problem)
        self.catalog.update(compiled)
        self.mapping_versions.update({r.name: r.version for r in changed})
        return set(compiled)

    def _apply_routing(self, row: RoutingRow | None) -> None:
        if row is None or row.version == self.routing_version:
            return
        self.routing_version = row.version
        try:
            routes = [RouteSettings.model_validate(r) for r in row.routes]
        except ValidationError as exc:
            log.error("registry routing not applied: %s", exc)
            return
        if problems := route_problems(routes, self._adapters):
            log.error("registry routing not applied: %s", "; ".join(problems))
            return
        self._routing.replace(routes)

    def _apply_connector(self, row: ConnectorRow, changed_mappings: set[str]) -> None:
        """Record what the registry wants of one connector; ``_settle`` then makes it so."""
        try:
            settings = ConnectorSettings.model_validate(row.config)
        except ValidationError as exc:
            self.telemetry.get(row.id).error(f"invalid settings in the registry: {exc.error_count()} problems")
            return
        if row.paused:
            self.paused.add(row.id)
        else:
            self.paused.discard(row.id)
        self.versions[row.id] = row.version
        uses = {settings.mapping, *settings.mappings.values()}
        current = self.settings.get(row.id)
        if current is None or current.model_dump(mode="json") != row.config:
            self.settings[row.id] = settings
            self._instances.pop(row.id, None)   # rebuilt by _settle; its old task stopped there
            self._mappings.pop(row.id, None)
        elif uses & changed_mappings:
            self._mappings.pop(row.id, None)

    async def _settle(self, cid: str, settings: ConnectorSettings) -> None:
        if not settings.enabled:
            await self._stop_task(cid, "stopped")
            self._detach(cid)
            return
        task_is_stale = cid in self._tasks and cid not in self._instances
        if task_is_stale or cid in self.paused:
            await self._stop_task(cid, "paused" if cid in self.paused else "stopped")
        if cid not in self._mappings:
            try:
                variants = self.mappings_of(settings)
            except ConfigError as exc:
                self._fail(cid, exc)
                return
            self._mappings[cid] = variants
            self._publisher.set_connector(cid, variants, settings.meta)
        if cid in self.paused:
            if cid in self._instances:
                self._expose(cid, settings, self._instances[cid])
            self.telemetry.get(cid).set_runtime_state("paused")
            return
        if cid not in self._tasks:
            self._bring_up(settings)

    def _bring_up(self, settings: ConnectorSettings) -> None:
        """Build the connector if needed and, once the gateway has started, run it (unless paused)."""
        cid = settings.id
        if cid not in self._instances:
            try:
                instance, variants = assemble_connector(settings, self.catalog, self._context_for(cid))
            except ConfigError as exc:
                self._fail(cid, exc)
                return
            self._instances[cid] = instance
            self._mappings[cid] = variants
            self._publisher.set_connector(cid, variants, settings.meta)
        self._expose(cid, settings, self._instances[cid])
        if cid in self.paused:
            self.telemetry.get(cid).set_runtime_state("paused")
        elif self._started:
            self._tasks[cid] = asyncio.create_task(self._run(cid, self._instances[cid]), name=f"connector {cid}")

    async def _run(self, cid: str, instance: Any) -> None:
        telemetry = self.telemetry.get(cid)
        telemetry.set_runtime_state("running")
        stopped_for_good = False

        def on_crash(_name: str, exc: BaseException) -> None:
            nonlocal stopped_for_good
            stopped_for_good = isinstance(exc, PermanentError | ConfigError)
            telemetry.error(f"{type(exc).__name__}: {exc}")

        await supervise(f"connector {cid}", partial(instance.run, self._publisher), on_crash=on_crash)
        telemetry.set_runtime_state("failed" if stopped_for_good else "stopped")

    async def _stop_task(self, cid: str, state: str) -> None:
        task = self._tasks.pop(cid, None)
        if task is None:
            return
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        # A connector that ran is rebuilt before it runs again (fresh clients and lease; its cursor
        # is durable); the push maps keep the old instance meanwhile, answering "paused".
        self._instances.pop(cid, None)
        self.telemetry.get(cid).set_runtime_state(state)

    def _expose(self, cid: str, settings: ConnectorSettings, instance: Any) -> None:
        if getattr(instance, "pushes_over_http", False):
            self.push_connectors[cid] = settings
            self.push_plugins[cid] = instance
        else:
            self.push_connectors.pop(cid, None)
            self.push_plugins.pop(cid, None)

    def _detach(self, cid: str) -> None:
        self._instances.pop(cid, None)
        self._mappings.pop(cid, None)
        self.push_connectors.pop(cid, None)
        self.push_plugins.pop(cid, None)
        self._publisher.set_connector(cid, None)

    def _fail(self, cid: str, exc: ConfigError) -> None:
        log.error("connector %s cannot be built: %s", cid, "; ".join(exc.problems))
        self._detach(cid)
        telemetry = self.telemetry.get(cid)
        telemetry.error("; ".join(exc.problems))
        telemetry.set_runtime_state("failed")

    async def _remove(self, cid: str) -> None:
        await self._stop_task(cid, "stopped")
        self._detach(cid)
        self.settings.pop(cid, None)
        self.versions.pop(cid, None)
        self.paused.discard(cid)
        self.telemetry.get(cid).set_runtime_state("stopped")
        self.telemetry.forget(cid)
