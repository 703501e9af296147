"""Per-connector telemetry held by the runtime: what a connector reports (``ConnectorTelemetry``) and
what ingest did with its records, for the connector's live status and for the metrics hooks.

``ConnectorTelemetryTable`` holds one ``RuntimeTelemetry`` per connector; it is what the runtime
passes in ``ConnectorContext.telemetry``. Each report is kept for the status and forwarded to the
hooks (``connector_event``, ``connector_gauge``, ``connector_state``).
``CountingHooks`` wraps the publisher's hooks to count records per connector on the way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from gateway.hooks import Hooks, NoHooks

# Connector-reported states in which a connector is not taking input.
_DOWN_STATES = ("connecting", "reconnecting", "disconnected", "stopped", "failed", "error", "waiting")
MAX_ERROR_CHARS = 500


@dataclass(slots=True)
class ConnectorStatus:
    """A snapshot-able status: the runtime's view (``runtime_state``) and the connector's own."""

    connector: str
    runtime_state: str = "stopped"     # running | paused | failed | stopped (disabled) | unassigned
    state: str | None = None           # what the connector says it is doing
    detail: str | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None
    last_record_at: datetime | None = None
    envelopes: int = 0
    records: dict[str, int] = field(default_factory=lambda: {"accepted": 0, "rejected": 0, "duplicate": 0})
    counters: dict[str, int] = field(default_factory=dict)
    gauges: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        received = sum(self.records.values())
        return {
            "connector": self.connector,
            "state": self.runtime_state,
            "connector_state": self.state,
            "detail": self.detail,
            "last_record_at": self.last_record_at.isoformat() if self.last_record_at else None,
            "last_error": self.last_error,
            "last_error_at": self.last_error_at.isoformat() if self.last_error_at else None,
            "counts": {"envelopes": self.envelopes, "received": received, **self.records},
            "counters": dict(self.counters),
            "gauges": dict(self.gauges),
        }


class RuntimeTelemetry:
    """One connector's telemetry (implements ``connectors.base.ConnectorTelemetry``)."""

    def __init__(self, connector: str, hooks: Hooks | None = None) -> None:
        self.status = ConnectorStatus(connector)
        self._hooks: Hooks = hooks or NoHooks()

    def count(self, name: str, n: int = 1) -> None:
        self.status.counters[name] = self.status.counters.get(name, 0) + n
        self._hooks.connector_event(self.status.connector, name, n)

    def gauge(self, name: str, value: float, key: str | None = None) -> None:
        self.status.gauges[name if key is None else f"{name}:{key}"] = value
        self._hooks.connector_gauge(self.status.connector, name, value, key)

    def state(self, state: str, detail: str | None = None) -> None:
        self.status.state = state
        self.status.detail = detail
        self._publish_up()

    def error(self, message: str) -> None:
        self.status.last_error = message[:MAX_ERROR_CHARS]
        self.status.last_error_at = datetime.now(UTC)

    # -- the runtime's side --

    def set_runtime_state(self, runtime_state: str) -> None:
        self.status.runtime_state = runtime_state
        if runtime_state != "running":
            self.status.state = None
            self.status.detail = None
        self._publish_up()

    @property
    def up(self) -> bool:
        reported = (self.status.state or "").lower()
        return self.status.runtime_state == "running" and not reported.startswith(_DOWN_STATES)

    def _publish_up(self) -> None:
        self._hooks.connector_state(self.status.connector, self.up, self.status.last_record_at)

    def envelope(self) -> None:
        self.status.envelopes += 1
        self.status.last_record_at = datetime.now(UTC)  # once per envelope, not per record: ingest is hot

    def outcome(self, status: str, n: int = 1) -> None:
        self.status.records[status] = self.status.records.get(status, 0) + n


class ConnectorTelemetryTable:
    """Every connector's telemetry by id; a connector's counts survive its restarts and pauses."""

    def __init__(self, hooks: Hooks | None = None) -> None:
        self._hooks = hooks
        self._by_id: dict[str, RuntimeTelemetry] = {}

    def get(self, connector: str) -> RuntimeTelemetry:
        found = self._by_id.get(connector)
        if found is None:
            found = self._by_id[connector] = RuntimeTelemetry(connector, self._hooks)
        return found

    def forget(self, connector: str) -> None:
        self._by_id.pop(connector, None)


class CountingHooks:
    """The publisher's hooks, counting envelopes and records per connector into the table first."""

    def __init__(self, inner: Hooks, table: ConnectorTelemetryTable) -> None:
        self._inner = inner
        self._table = table

    def envelope_received(self, connector: str) -> None:
        self._table.get(connector).envelope()
        self._inner.envelope_received(connector)

    def record_outcome(self, connector: str, kind: str, status: str, error_codes: Sequence[str],
                       department: str | None = None, n: int = 1) -> None:
        self._table.get(connector).outcome(status, n)
        self._inner.record_outcome(connector, kind, status, error_codes, department=department, n=n)

    def store_write_failed(self, connector: str) -> None:
        self._inner.store_write_failed(connector)

    def delivery_result(self, adapter: str, kind: str, status: str, latency_s: float | None,
                        department: str | None = None) -> None:
        self._inner.delivery_result(adapter, kind, status, latency_s, department=department)

    def connector_event(self, connector: str, name: str, n: int = 1) -> None:
        self._inner.connector_event(connector, name, n)

    def connector_gauge(self, connector: str, name: str, value: float, key: str | None = None) -> None:
        self._inner.connector_gauge(connector, name, value, key)

    def connector_state(self, connector: str, up: bool, last_record_at: datetime | float | None = None) -> None:
        self._inner.connector_state(connector, up, last_record_at)
