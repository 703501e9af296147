"""The ops view: readiness with reasons, and the dashboard's overview, from the running gateway.

It reads what the runtime already holds: the metrics hooks (counts since start, throughput over
the last minute, connector states), the workers' circuit breakers, and the stores' backlog and
data quality. Connectors and adapters are looked up on every call (``connectors``, ``circuits``
are callables), so a connector added or removed at run time shows without a restart.

Readiness: the stores must answer and no MQTT connector may have reported its broker connection
down; a target whose circuit is open makes the gateway ``degraded`` but still ready, since the
outbox keeps what it cannot deliver and sources must go on being acknowledged.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from gateway.backlog import SHANGHAI, Backlog
from gateway.dead_letters import DeadLetterOps, dead_letter_dict
from gateway.quality import Period, QualityReport
from gateway.stores.outbox import DeadLetterFilter
from monitoring.metrics import PrometheusHooks

if TYPE_CHECKING:
    from gateway.runtime import Runtime

BROKER_CONNECTOR_TYPES = frozenset({"mqtt"})
QUALITY_CACHE_S = 30.0
QUALITY_DAYS = 30
DEAD_LETTERS_SHOWN = 50


@dataclass(frozen=True, slots=True)
class ConnectorInfo:
    type: str
    department: str | None = None
    running: bool = True  # False while paused or stopped on purpose: its broker is then no concern


class OpsView:
    def __init__(self, *, metrics: PrometheusHooks, backlog: Backlog, quality: QualityReport,
                 ops: DeadLetterOps, checks: Mapping[str, Callable[[], bool]],
                 connectors: Callable[[], Mapping[str, ConnectorInfo]],
                 circuits: Callable[[], Mapping[str, str]],
                 departments: Callable[[], Iterable[str]]) -> None:
        self.metrics = metrics
        self.backlog = backlog
        self.quality = quality
        self._ops = ops
        self._checks = checks
        self._connectors = connectors
        self._circuits = circuits
        self._departments = departments
        self._quality_cache: tuple[float, list[dict[str, Any]]] | None = None
        self._quality_lock = threading.Lock()

    def department_codes(self) -> list[str]:
        return list(self._departments())

    # -- readiness ------------------------------------------------------------------------------

    def readiness(self) -> dict[str, Any]:
        stores = {name: bool(check()) for name, check in self._checks.items()}
        brokers = {cid: self._up_word(self.metrics.connector_up(cid))
                   for cid, info in self._connectors().items() if info.type in BROKER_CONNECTOR_TYPES and info.running}
        circuits = dict(self._circuits())
        broker_ok = all(state != "down" for state in brokers.values())
        targets_ok = all(state == "closed" for state in circuits.values())
        ready = all(stores.values()) and broker_ok
        checks: dict[str, Any] = {name: {"ok": ok} for name, ok in stores.items()}
        checks["broker"] = {"ok": broker_ok, "connectors": brokers}
        checks["targets"] = {"ok": targets_ok, "circuits": circuits}
        status = "unavailable" if not ready else "ok" if targets_ok else "degraded"
        return {"ready": ready, "status": status, "checks": checks}

    @staticmethod
    def _up_word(up: bool | None) -> str:
        return "unknown" if up is None else "up" if up else "down"

    # -- the dashboard --------------------------------------------------------------------------

    def overview(self) -> dict[str, Any]:
        now = datetime.now(UTC)
        gauges = self.backlog.gauges(now)
        per_minute = self.metrics.throughput.per_window()
        records = self.metrics.totals("records", "connector")
        deliveries = self.metrics.totals("deliveries", "adapter")
        circuits = dict(self._circuits())
        connectors = []
        for cid, info in sorted(self._connectors().items()):
            last = self.metrics.last_record_at(cid)
            counts = records.get(cid, {})
            connectors.append({
                "id": cid, "type": info.type, "department": info.department,
                "state": self._up_word(self.metrics.connector_up(cid)),
                "last_record_at": None if last is None else datetime.fromtimestamp(last, UTC).isoformat(),
                "per_minute": per_minute.get(cid, 0),
                **{status: int(counts.get(status, 0)) for status in ("accepted", "rejected", "duplicate")},
            })
        targets = []
        for adapter in sorted(set(circuits) | set(gauges.outbox_depth)):
            counts = deliveries.get(adapter, {})
            targets.append({
                "id": adapter, "circuit": circuits.get(adapter, "closed"),
                "outbox_depth": gauges.outbox_depth.get(adapter, 0),
                "oldest_age_s": gauges.outbox_oldest_age_s.get(adapter),
                "dead_letters": gauges.dead_letters.get(adapter, 0),
                **{status: int(counts.get(status, 0)) for status in ("delivered", "rejected", "retry", "failed")},
            })
        dead = self._ops.find(DeadLetterFilter(), DEAD_LETTERS_SHOWN)
        return {
            "generated_at": now.isoformat(),
            "readiness": self.readiness(),
            "connectors": connectors,
            "targets": targets,
            "departments": self._department_rows(gauges.rejections_open, gauges.rejections_overdue),
            "dead_letters": [dead_letter_dict(d) for d in dead],
        }

    def _department_rows(self, open_: Mapping[str, int], overdue: Mapping[str, int]) -> list[dict[str, Any]]:
        quality = {q["department"]: q for q in self._quality_cached()}
        names = sorted(set(self.department_codes()) | set(open_) | set(quality))
        return [{"department": d, "open_rejections": open_.get(d, 0), "overdue_rejections": overdue.get(d, 0),
                 "quality": quality.get(d)} for d in names]

    def _quality_cached(self) -> list[dict[str, Any]]:
        with self._quality_lock:
            cached = self._quality_cache
            if cached is not None and time.monotonic() - cached[0] < QUALITY_CACHE_S:
                return cached[1]
            today = datetime.now(SHANGHAI).date()
            rows = [q.as_dict() for q in self.quality.compute(Period.last_days(QUALITY_DAYS, today),
                                                              self.department_codes(), today=today)]
            self._quality_cache = (time.monotonic(), rows)
            return rows

    def forget_quality(self) -> None:
        """Recompute the dashboard's quality figures on the next call (tests, after a big change)."""
        with self._quality_lock:
            self._quality_cache = None


def ops_view_of(runtime: Runtime) -> OpsView:
    """The ops view of a runtime, and its store and circuit gauges registered with its metrics."""
    store = runtime.store
    checks: dict[str, Callable[[], bool]] = {"database": store.ping}
    if runtime.redis_outbox is not None:
        checks["outbox"] = runtime.redis_outbox.ping

    def connectors() -> dict[str, ConnectorInfo]:
        return {c.id: ConnectorInfo(c.type, c.department, runtime.telemetry.get(c.id).status.runtime_state == "running")
                for c in runtime.settings.connectors if c.enabled}

    def circuits() -> dict[str, str]:
        return {adapter: worker.breaker.state for adapter, worker in list(runtime.workers.items())}

    def adapters() -> list[str]:
        return [a.id for a in runtime.settings.adapters if a.enabled]

    backlog = Backlog(runtime.engine, store.outbox, adapters)
    runtime.metrics.watch_stores(backlog.gauges)
    runtime.metrics.watch_circuits(circuits)
    return OpsView(metrics=runtime.metrics, backlog=backlog, quality=QualityReport(runtime.engine, runtime.calendar,
                                                                                   backlog),
                   ops=runtime.ops, checks=checks, connectors=connectors, circuits=circuits,
                   departments=lambda: [d.code for d in runtime.settings.departments])
