"""Intent-named observability hooks: the core calls these, monitoring implements them.

The core never imports prometheus_client; ``monitoring.metrics.PrometheusHooks`` fits this
protocol structurally, and ``NoHooks`` is the silent default for tests and dry runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class Hooks(Protocol):
    def envelope_received(self, connector: str) -> None: ...
    def record_outcome(self, connector: str, kind: str, status: str, error_codes: Sequence[str]) -> None: ...
    def store_write_failed(self, connector: str) -> None: ...
    def delivery_result(self, adapter: str, kind: str, status: str, latency_s: float | None) -> None: ...


class NoHooks:
    def envelope_received(self, connector: str) -> None:
        return None

    def record_outcome(self, connector: str, kind: str, status: str, error_codes: Sequence[str]) -> None:
        return None

    def store_write_failed(self, connector: str) -> None:
        return None

    def delivery_result(self, adapter: str, kind: str, status: str, latency_s: float | None) -> None:
        return None
