"""Runtime-side connector telemetry: what connectors report and what ingest counted, kept for the
status and forwarded to the metrics hooks; secrets masked in what is shown and audited."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from gateway.hooks import NoHooks
from gateway.secrets_mask import MASK, mask_connector, restore_masked
from gateway.telemetry import ConnectorTelemetryTable, CountingHooks


class RecordingHooks(NoHooks):
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def record_outcome(self, connector: str, kind: str, status: str, error_codes: Sequence[str],
                       department: str | None = None, n: int = 1) -> None:
        self.calls.append(("outcome", connector, status, department))

    def connector_event(self, connector: str, name: str, n: int = 1) -> None:
        self.calls.append(("event", connector, name, n))

    def connector_state(self, connector: str, up: bool, last_record_at: datetime | float | None = None) -> None:
        self.calls.append(("up", connector, up))


def test_reports_are_kept_for_the_status_and_forwarded_to_the_hooks() -> None:
    hooks = RecordingHooks()
    table = ConnectorTelemetryTable(hooks)
    telemetry = table.get("iot")
    telemetry.set_runtime_state("running")
    telemetry.count("messages", 3)
    telemetry.gauge("backlog", 2.0, key="330100")
    telemetry.state("connecting")
    telemetry.error("broker refused: bad credentials")
    status = telemetry.status.as_dict()
    assert status["state"] == "running" and status["connector_state"] == "connecting"
    assert status["counters"] == {"messages": 3} and status["gauges"] == {"backlog:330100": 2.0}
    assert status["last_error"] == "broker refused: bad credentials" and status["last_error_at"]
    assert ("event", "iot", "messages", 3) in hooks.calls
    assert hooks.calls[-1] == ("up", "iot", False)  # connecting is not up
    telemetry.state("running")
    assert hooks.calls[-1] == ("up", "iot", True)


def test_counting_hooks_count_per_connector_and_pass_everything_on() -> None:
    inner = RecordingHooks()
    table = ConnectorTelemetryTable(inner)
    hooks = CountingHooks(inner, table)
    hooks.envelope_received("push")
    hooks.record_outcome("push", "penalty", "accepted", [], department="eco")
    hooks.record_outcome("push", "penalty", "rejected", ["REQUIRED"], department="eco")
    counts = table.get("push").status.as_dict()["counts"]
    assert counts == {"envelopes": 1, "received": 2, "accepted": 1, "rejected": 1, "duplicate": 0}
    assert table.get("push").status.last_record_at is not None
    assert ("outcome", "push", "rejected", "eco") in inner.calls


def test_secret_options_are_masked_and_a_mask_sent_back_keeps_the_stored_value() -> None:
    config = {"id": "r", "type": "rest_poll", "options": {"base_url": "http://x", "client_id": "sgw",
                                                           "client_secret": "s3cret"}}
    masked = mask_connector(config)
    assert masked["options"]["client_secret"] == MASK and masked["options"]["client_id"] == "sgw"
    unknown = mask_connector({"type": "nope", "options": {"password": "p", "host": "h"}})
    assert unknown["options"] == {"password": MASK, "host": "h"}  # by name when the type is unknown
    restored = restore_masked({**masked["options"], "client_id": "other"}, config["options"])
    assert restored == {"base_url": "http://x", "client_id": "other", "client_secret": "s3cret"}
