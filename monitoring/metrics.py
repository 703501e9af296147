"""Prometheus metrics behind the core's hooks. Built per app on its own registry (nothing global).

Labels are bounded: connector and adapter ids come from configuration, kinds and statuses from
the standard, error codes from a closed vocabulary (rule codes are folded to ``RULE``, any code
outside the vocabulary to ``OTHER``), departments from configuration with a cap on distinct
values (``other`` past it). Record ids, device ids and messages never become label values.

Gauges that need the stores (outbox depth and age, dead letters, open and overdue rejections)
come from a ``StoreGauges`` snapshot function the runtime provides, read on scrape and cached
for ``cache_s`` seconds, so a scraper (or several) costs a few indexed queries every few seconds.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from threading import Lock
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from monitoring.collectors import CachedSnapshot, CircuitCollector, StoreCollector, StoreGauges

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
__all__ = ["CONTENT_TYPE", "BoundedValues", "PrometheusHooks", "StoreGauges", "Throughput", "bounded_code"]

# The standard's finding codes and the gateway's own (see the standard's README, "Errors").
KNOWN_CODES = frozenset({
    "KIND_UNKNOWN", "VERSION_UNSUPPORTED", "UNKNOWN_FIELD", "REQUIRED", "TYPE", "MAX_LENGTH", "PATTERN",
    "RANGE", "MIN_ITEMS", "MAX_ITEMS", "CODE_UNKNOWN", "CODE_AMBIGUOUS", "IDENTIFIER_FORMAT",
    "IDENTIFIER_CHECKSUM", "IDENTIFIER_UNKNOWN", "IDENTIFIER_LEGACY", "RULE", "PAYLOAD_TOO_LARGE",
    "MAPPING_ERROR", "TARGET_REJECTED", "TARGET_CONSTRAINT", "DUPLICATE", "KIND_UNROUTED",
})
OTHER = "OTHER"
MAX_DEPARTMENTS = 200
LATENCY_BUCKETS_S = (0.01, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600)
THROUGHPUT_WINDOW_S = 60
# The last-record gauge moves at most this often per connector: a scrape every few seconds never
# sees the difference, and setting it per record cost as much as counting the record.
LAST_RECORD_RESOLUTION_S = 0.1


def bounded_code(code: str) -> str:
    if code.startswith("RULE:"):
        return "RULE"
    return code if code in KNOWN_CODES else OTHER


class _Children:
    """A metric's labelled children, looked up once: ``labels()`` checks and locks on every call,
    which on the per-record paths cost more than the increment. Children are never removed."""

    __slots__ = ("_children", "_metric")

    def __init__(self, metric: Counter | Gauge | Histogram) -> None:
        self._metric = metric
        self._children: dict[tuple[str, ...], Any] = {}

    def __call__(self, *labels: str) -> Any:
        found = self._children.get(labels)
        if found is None:
            found = self._children[labels] = self._metric.labels(*labels)
        return found


class BoundedValues:
    """Label values from a configured set: past ``limit`` distinct values, new ones become ``other``."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._seen: set[str] = set()
        self._lock = Lock()

    def __call__(self, value: str | None) -> str:
        if not value:
            return "none"
        if value in self._seen:
            return value
        with self._lock:
            if len(self._seen) >= self._limit:
                return "other"
            self._seen.add(value)
        return value


class Throughput:
    """Records per connector over the last ``window_s`` seconds, in one-second buckets (for the dashboard)."""

    def __init__(self, window_s: int = THROUGHPUT_WINDOW_S, clock: Callable[[], float] = time.time) -> None:
        self._window_s = window_s
        self._clock = clock
        self._buckets: dict[str, deque[list[int]]] = {}
        self._lock = Lock()

    def add(self, connector: str, n: int = 1) -> None:
        second = int(self._clock())
        with self._lock:
            buckets = self._buckets.setdefault(connector, deque())
            if buckets and buckets[-1][0] == second:
                buckets[-1][1] += n
            else:
                buckets.append([second, n])
            self._trim(buckets, second)

    def per_window(self) -> dict[str, int]:
        second = int(self._clock())
        with self._lock:
            out = {}
            for connector, buckets in self._buckets.items():
                self._trim(buckets, second)
                out[connector] = sum(n for _, n in buckets)
            return out

    def _trim(self, buckets: deque[list[int]], second: int) -> None:
        while buckets and buckets[0][0] <= second - self._window_s:
            buckets.popleft()


class PrometheusHooks:
    def __init__(self, registry: CollectorRegistry | None = None, *, max_departments: int = MAX_DEPARTMENTS) -> None:
        self.registry = registry or CollectorRegistry()
        self.departments = BoundedValues(max_departments)
        self.throughput = Throughput()
        self._up: dict[str, bool] = {}
        self._last_record: dict[str, float] = {}
        r = self.registry
        self._envelopes = Counter("sgw_envelopes_received_total", "Envelopes received", ["connector"], registry=r)
        self._records = Counter("sgw_records_total",
                                "Records by outcome (accepted, rejected, duplicate); their sum is received",
                                ["connector", "department", "kind", "status"], registry=r)
        self._errors = Counter("sgw_record_errors_total", "Rejection findings by code (rule ids folded to RULE)",
                               ["connector", "department", "code"], registry=r)
        self._store_failures = Counter("sgw_store_write_failures_total", "Durable writes that failed",
                                       ["connector"], registry=r)
        self._deliveries = Counter("sgw_deliveries_total",
                                   "Delivery results (delivered, rejected by the target, retry, failed: dead-lettered)",
                                   ["adapter", "department", "kind", "status"], registry=r)
        self._latency = Histogram("sgw_delivery_latency_seconds",
                                  "From the record's receipt (written to the outbox) to the target's receipt",
                                  ["adapter"], registry=r, buckets=LATENCY_BUCKETS_S)
        self._connector_up = Gauge("sgw_connector_up", "1 while a connector is connected or running, 0 when down",
                                   ["connector"], registry=r)
        self._connector_last = Gauge("sgw_connector_last_record_timestamp_seconds",
                                     "Unix time of the last record a connector delivered to ingest",
                                     ["connector"], registry=r)
        self._connector_events = Counter("sgw_connector_events_total",
                                         "Connector-reported events (messages, bad signatures...)",
                                         ["connector", "name"], registry=r)
        self._records_of, self._errors_of = _Children(self._records), _Children(self._errors)
        self._deliveries_of, self._latency_of = _Children(self._deliveries), _Children(self._latency)
        self._connector_last_of = _Children(self._connector_last)
        self._connector_levels = Gauge("sgw_connector_level", "Connector-reported levels", ["connector", "name", "key"],
                                       registry=r)

    # -- the core's hooks ------------------------------------------------------------------------

    def envelope_received(self, connector: str) -> None:
        self._envelopes.labels(connector).inc()

    def record_outcome(self, connector: str, kind: str, status: str, error_codes: Sequence[str],
                       department: str | None = None, n: int = 1) -> None:
        dept = self.departments(department)
        self._records_of(connector, dept, kind, status).inc(n)
        for code in set(map(bounded_code, error_codes)) if error_codes else ():
            self._errors_of(connector, dept, code).inc(n)
        now = time.time()
        if now - self._last_record.get(connector, 0.0) >= LAST_RECORD_RESOLUTION_S:
            self._last_record[connector] = now
            self._connector_last_of(connector).set(now)
        self.throughput.add(connector, n)

    def store_write_failed(self, connector: str) -> None:
        self._store_failures.labels(connector).inc()

    def delivery_result(self, adapter: str, kind: str, status: str, latency_s: float | None,
                        department: str | None = None) -> None:
        self._deliveries_of(adapter, self.departments(department), kind, status).inc()
        if latency_s is not None:
            self._latency_of(adapter).observe(max(latency_s, 0.0))

    def connector_event(self, connector: str, name: str, n: int = 1) -> None:
        self._connector_events.labels(connector, name).inc(n)

    def connector_gauge(self, connector: str, name: str, value: float, key: str | None = None) -> None:
        self._connector_levels.labels(connector, name, key or "").set(value)

    def connector_state(self, connector: str, up: bool, last_record_at: datetime | float | None = None) -> None:
        self._up[connector] = up
        self._connector_up.labels(connector).set(1.0 if up else 0.0)
        if last_record_at is not None:
            at = last_record_at.timestamp() if isinstance(last_record_at, datetime) else float(last_record_at)
            self._last_record[connector] = max(at, self._last_record.get(connector, 0.0))
            self._connector_last.labels(connector).set(self._last_record[connector])

    # -- readers, for readiness and the dashboard ------------------------------------------------

    def connector_up(self, connector: str) -> bool | None:
        """The last state a connector reported; None when it has reported none."""
        return self._up.get(connector)

    def last_record_at(self, connector: str) -> float | None:
        return self._last_record.get(connector)

    def totals(self, metric: str, by: str) -> dict[str, dict[str, float]]:
        """Counter totals of ``sgw_records`` or ``sgw_deliveries`` by one label and ``status``."""
        counter = {"records": self._records, "deliveries": self._deliveries}[metric]
        out: dict[str, dict[str, float]] = {}
        for family in counter.collect():
            for sample in family.samples:
                if sample.name.endswith("_total"):
                    row = out.setdefault(sample.labels[by], {})
                    row[sample.labels["status"]] = row.get(sample.labels["status"], 0.0) + sample.value
        return out

    # -- collectors fed by the runtime -----------------------------------------------------------

    def watch_stores(self, read: Callable[[], StoreGauges], cache_s: float = 5.0) -> CachedSnapshot:
        snapshot = CachedSnapshot(read, cache_s)
        self.registry.register(StoreCollector(snapshot, self.departments))
        return snapshot

    def watch_circuits(self, states: Callable[[], Mapping[str, str]]) -> None:
        self.registry.register(CircuitCollector(states))

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
