"""Prometheus metrics behind the core's hooks. Built per app on its own registry (nothing global).

Labels are bounded: connector and adapter ids come from configuration, kinds and statuses from
the standard, error codes from a closed vocabulary (rule codes are folded to ``RULE``).
"""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _bounded_code(code: str) -> str:
    return "RULE" if code.startswith("RULE:") else code[:40]


class PrometheusHooks:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self._envelopes = Counter("sgw_envelopes_received_total", "Envelopes received", ["connector"],
                                  registry=self.registry)
        self._records = Counter("sgw_records_total", "Records by outcome", ["connector", "kind", "status"],
                                registry=self.registry)
        self._errors = Counter("sgw_record_errors_total", "Rejection findings by code", ["connector", "code"],
                               registry=self.registry)
        self._store_failures = Counter("sgw_store_write_failures_total", "Durable writes that failed",
                                       ["connector"], registry=self.registry)
        self._deliveries = Counter("sgw_deliveries_total", "Delivery results", ["adapter", "kind", "status"],
                                   registry=self.registry)
        self._latency = Histogram("sgw_delivery_latency_seconds", "Receipt to delivery", ["adapter"],
                                  registry=self.registry,
                                  buckets=(0.01, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60, 300))

    def envelope_received(self, connector: str) -> None:
        self._envelopes.labels(connector).inc()

    def record_outcome(self, connector: str, kind: str, status: str, error_codes: Sequence[str]) -> None:
        self._records.labels(connector, kind, status).inc()
        for code in set(map(_bounded_code, error_codes)):
            self._errors.labels(connector, code).inc()

    def store_write_failed(self, connector: str) -> None:
        self._store_failures.labels(connector).inc()

    def delivery_result(self, adapter: str, kind: str, status: str, latency_s: float | None) -> None:
        self._deliveries.labels(adapter, kind, status).inc()
        if latency_s is not None:
            self._latency.labels(adapter).observe(latency_s)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
