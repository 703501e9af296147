"""Gauges read on scrape: what the stores say (outbox, dead letters, rejections), cached a few
seconds, and the adapters' circuit states. Registered by ``PrometheusHooks.watch_stores`` and
``watch_circuits`` with callables the runtime provides (monitoring imports nothing of the core).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from threading import Lock
from typing import Protocol

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector


class LabelValues(Protocol):
    def __call__(self, value: str | None) -> str: ...


@dataclass(frozen=True, slots=True)
class StoreGauges:
    """What the stores say now, per adapter and department (plain values: monitoring imports no core)."""

    outbox_depth: Mapping[str, int] = field(default_factory=dict)
    outbox_oldest_age_s: Mapping[str, float] = field(default_factory=dict)
    dead_letters: Mapping[str, int] = field(default_factory=dict)
    rejections_open: Mapping[str, int] = field(default_factory=dict)
    rejections_overdue: Mapping[str, int] = field(default_factory=dict)


class CachedSnapshot:
    """Calls ``read`` at most once per ``cache_s`` seconds; a failed read keeps the last value."""

    def __init__(self, read: Callable[[], StoreGauges], cache_s: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._read = read
        self._cache_s = cache_s
        self._clock = clock
        self._value: StoreGauges | None = None
        self._at = float("-inf")
        self._lock = Lock()
        self.failed = False

    def __call__(self) -> StoreGauges:
        with self._lock:
            if self._value is None or self._clock() - self._at >= self._cache_s:
                try:
                    self._value = self._read()
                    self.failed = False
                except Exception:  # noqa: BLE001 - a scrape must answer; ``sgw_store_gauges_failed`` says why not
                    self.failed = True
                    self._value = self._value or StoreGauges()
                self._at = self._clock()
            return self._value


class StoreCollector(Collector):
    def __init__(self, snapshot: CachedSnapshot, departments: LabelValues) -> None:
        self._snapshot = snapshot
        self._departments = departments

    def describe(self) -> Iterable[GaugeMetricFamily]:
        return list(self._families(StoreGauges()))

    def collect(self) -> Iterable[GaugeMetricFamily]:
        families = list(self._families(self._snapshot()))
        failed = GaugeMetricFamily("sgw_store_gauges_failed", "1 when the last read of the store gauges failed")
        failed.add_metric([], 1.0 if self._snapshot.failed else 0.0)
        return [*families, failed]

    def _families(self, g: StoreGauges) -> Iterator[GaugeMetricFamily]:
        per_adapter = (("sgw_outbox_depth", "Records waiting in an adapter's outbox (pending and in flight)",
                        g.outbox_depth),
                       ("sgw_outbox_oldest_age_seconds", "Age of the oldest record waiting in an adapter's outbox",
                        g.outbox_oldest_age_s),
                       ("sgw_dead_letters", "Dead letters waiting for ops, per adapter", g.dead_letters))
        for name, doc, values in per_adapter:
            family = GaugeMetricFamily(name, doc, labels=["adapter"])
            for adapter, value in sorted(values.items()):
                family.add_metric([adapter], float(value))
            yield family
        per_department = (("sgw_rejections_open", "Open rejections per department", g.rejections_open),
                          ("sgw_rejections_overdue", "Open rejections past their due date per department",
                           g.rejections_overdue))
        for name, doc, values in per_department:
            family = GaugeMetricFamily(name, doc, labels=["department"])
            folded: dict[str, float] = {}  # several departments may fold into "other": one series
            for department, value in values.items():
                label = self._departments(department)
                folded[label] = folded.get(label, 0.0) + float(value)
            for label, total in sorted(folded.items()):
                family.add_metric([label], total)
            yield family


class CircuitCollector(Collector):
    """The circuit state of every adapter, read from the running workers on scrape."""

    STATES = ("closed", "half_open", "open")

    def __init__(self, states: Callable[[], Mapping[str, str]]) -> None:
        self._states = states

    def describe(self) -> Iterable[GaugeMetricFamily]:
        return list(self._families({}))

    def collect(self) -> Iterable[GaugeMetricFamily]:
        return list(self._families(self._states()))

    def _families(self, states: Mapping[str, str]) -> Iterator[GaugeMetricFamily]:
        is_open = GaugeMetricFamily("sgw_adapter_circuit_open",
                                    "1 while an adapter's circuit is open or half-open (the target is failing)",
                                    labels=["adapter"])
        state = GaugeMetricFamily("sgw_adapter_circuit_state", "An adapter's circuit state (1 for the current one)",
                                  labels=["adapter", "state"])
        for adapter, current in sorted(states.items()):
            is_open.add_metric([adapter], 0.0 if current == "closed" else 1.0)
            for name in self.STATES:
                state.add_metric([adapter, name], 1.0 if current == name else 0.0)
        yield is_open
        yield state
