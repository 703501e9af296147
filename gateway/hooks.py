"""Intent-named observability hooks: the core calls these, monitoring implements them.

The core never imports prometheus_client; ``monitoring.metrics.PrometheusHooks`` fits this
protocol structurally, and ``NoHooks`` is the silent default for tests and dry runs.

``department`` is the envelope's (configured) department; ``connector_*`` are what connectors
report through their telemetry (``connectors.base.ConnectorTelemetry``): a named counter, a named
level (optionally per bounded key), and whether the connector is up, with its last record's time.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol


class Hooks(Protocol):
    def envelope_received(self, connector: str) -> None: ...
    def record_outcome(self, connector: str, kind: str, status: str, error_codes: Sequence[str],
                       department: str | None = None, n: int = 1) -> None:
        """``n`` records of one envelope with this kind, status and these error codes."""
    def store_write_failed(self, connector: str) -> None: ...
    def delivery_result(self, adapter: str, kind: str, status: str, latency_s: float | None,
                        department: str | None = None) -> None: ...
    def connector_event(self, connector: str, name: str, n: int = 1) -> None: ...
    def connector_gauge(self, connector: str, name: str, value: float, key: str | None = None) -> None: ...
    def connector_state(self, connector: str, up: bool, last_record_at: datetime | float | None = None) -> None: ...


class NoHooks:
    def envelope_received(self, connector: str) -> None:
        return None

    def record_outcome(self, connector: str, kind: str, status: str, error_codes: Sequence[str],
                       department: str | None = None, n: int = 1) -> None:
        return None

    def store_write_failed(self, connector: str) -> None:
        return None

    def delivery_result(self, adapter: str, kind: str, status: str, latency_s: float | None,
                        department: str | None = None) -> None:
        return None

    def connector_event(self, connector: str, name: str, n: int = 1) -> None:
        return None

    def connector_gauge(self, connector: str, name: str, value: float, key: str | None = None) -> None:
        return None

    def connector_state(self, connector: str, up: bool, last_record_at: datetime | float | None = None) -> None:
        return None
