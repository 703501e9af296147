from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from monitoring.logs import JsonFormatter, PiiMasker, PiiTagger, configure_logging, record_context
from monitoring.metrics import PrometheusHooks, StoreGauges, Throughput


def test_pii_tags_correlate_without_revealing_the_value() -> None:
    tag = PiiTagger(b"k" * 32)
    assert tag("330102199002273041") == tag("330102199002273041")
    assert tag("330102199002273041") != tag("330102199002273042")
    assert tag("330102199002273041").startswith("pii:") and "3301021990" not in tag("330102199002273041")
    assert PiiTagger()("x") != PiiTagger()("x")  # a random key per process when none is configured


def test_json_logs_carry_the_extra_fields() -> None:
    record = logging.LogRecord("sgw", logging.INFO, __file__, 1, "accepted %d", (3,), None)
    record.record_id = "0f0e-..."
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "accepted 3" and line["record_id"] == "0f0e-..." and line["level"] == "INFO"


def test_metrics_are_per_app_and_parse_with_bounded_labels() -> None:
    first, second = PrometheusHooks(), PrometheusHooks()
    first.record_outcome("soap", "penalty", "rejected", ["RULE:PEN-003", "RULE:CPT-001", "REQUIRED"])
    first.delivery_result("data-centre", "penalty", "delivered", 0.12)
    families = {f.name: f for f in text_string_to_metric_families(first.exposition().decode())}
    codes = {s.labels["code"] for s in families["sgw_record_errors"].samples if s.name.endswith("_total")}
    assert codes == {"RULE", "REQUIRED"}  # rule ids folded: no unbounded label values
    assert "sgw_record_errors" not in {f.name for f in text_string_to_metric_families(second.exposition().decode())
                                       if any(s.value for s in f.samples)}


# -- metrics: every family, bounded labels, store and circuit gauges --------------------------------


def families_of(hooks: PrometheusHooks) -> dict[str, Any]:
    return {f.name: f for f in text_string_to_metric_families(hooks.exposition().decode())}


def samples(hooks: PrometheusHooks, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {tuple(sorted(s.labels.items())): s.value
            for f in text_string_to_metric_families(hooks.exposition().decode()) for s in f.samples if s.name == name}


def test_unknown_error_codes_and_departments_past_the_cap_are_folded() -> None:
    hooks = PrometheusHooks(max_departments=2)
    hooks.record_outcome("soap", "penalty", "rejected", ["X-" + str(n) for n in range(50)], department="eco")
    hooks.record_outcome("soap", "penalty", "accepted", [], department="market")
    hooks.record_outcome("soap", "penalty", "accepted", [], department="tax")  # a third: past the cap
    hooks.record_outcome("soap", "penalty", "accepted", [])
    codes = {dict(k)["code"] for k in samples(hooks, "sgw_record_errors_total")}
    assert codes == {"OTHER"}
    departments = {dict(k)["department"] for k in samples(hooks, "sgw_records_total")}
    assert departments == {"eco", "market", "other", "none"}


def test_delivery_latency_and_connector_reports_are_exposed() -> None:
    hooks = PrometheusHooks()
    hooks.delivery_result("national", "penalty", "delivered", 0.3, department="eco")
    hooks.delivery_result("national", "penalty", "failed", None, department="eco")
    hooks.connector_event("mqtt-iot", "messages", 3)
    hooks.connector_gauge("mqtt-iot", "devices_online", 7, key="330106")
    hooks.connector_state("mqtt-iot", False, datetime(2026, 1, 1, tzinfo=UTC))
    assert samples(hooks, "sgw_delivery_latency_seconds_count") == {(("adapter", "national"),): 1.0}
    assert samples(hooks, "sgw_deliveries_total")[
        (("adapter", "national"), ("department", "eco"), ("kind", "penalty"), ("status", "failed"))] == 1.0
    assert samples(hooks, "sgw_connector_events_total") == {(("connector", "mqtt-iot"), ("name", "messages")): 3.0}
    assert samples(hooks, "sgw_connector_up") == {(("connector", "mqtt-iot"),): 0.0}
    assert samples(hooks, "sgw_connector_last_record_timestamp_seconds") == {
        (("connector", "mqtt-iot"),): datetime(2026, 1, 1, tzinfo=UTC).timestamp()}
    assert hooks.connector_up("mqtt-iot") is False and hooks.connector_up("never-reported") is None


def test_store_gauges_are_read_on_scrape_and_cached() -> None:
    hooks = PrometheusHooks()
    reads: list[int] = []

    def read() -> StoreGauges:
        reads.append(1)
        return StoreGauges(outbox_depth={"national": 5}, outbox_oldest_age_s={"national": 12.5},
                           dead_letters={"national": 2}, rejections_open={"eco": 4, "": 1},
                           rejections_overdue={"eco": 1, "": 0})

    hooks.watch_stores(read, cache_s=60)
    hooks.watch_circuits(lambda: {"national": "open", "data-centre": "closed"})
    first = samples(hooks, "sgw_outbox_depth")
    samples(hooks, "sgw_dead_letters")
    assert len(reads) == 1  # the second scrape came from the cache
    assert first == {(("adapter", "national"),): 5.0}
    assert samples(hooks, "sgw_rejections_overdue") == {(("department", "eco"),): 1.0, (("department", "none"),): 0.0}
    assert samples(hooks, "sgw_adapter_circuit_open") == {(("adapter", "data-centre"),): 0.0,
                                                          (("adapter", "national"),): 1.0}
    assert samples(hooks, "sgw_store_gauges_failed") == {(): 0.0}


def test_departments_past_the_cap_fold_into_one_series_of_store_gauges() -> None:
    hooks = PrometheusHooks(max_departments=1)
    hooks.watch_stores(lambda: StoreGauges(rejections_open={"a": 1, "b": 2, "c": 3}))
    assert samples(hooks, "sgw_rejections_open") == {(("department", "a"),): 1.0, (("department", "other"),): 5.0}


def test_a_failing_store_read_keeps_the_scrape_answering() -> None:
    hooks = PrometheusHooks()

    def broken() -> StoreGauges:
        raise RuntimeError("database down")

    hooks.watch_stores(broken)
    assert samples(hooks, "sgw_store_gauges_failed") == {(): 1.0}
    assert samples(hooks, "sgw_outbox_depth") == {}


def test_throughput_counts_the_last_minute_per_connector() -> None:
    now = [1000.0]
    meter = Throughput(window_s=60, clock=lambda: now[0])
    meter.add("a", 3)
    now[0] += 30
    meter.add("a")
    meter.add("b", 2)
    assert meter.per_window() == {"a": 4, "b": 2}
    now[0] += 31  # the first three are more than a minute old
    assert meter.per_window() == {"a": 1, "b": 2}


# -- logs: PII masked on the production path --------------------------------------------------------


def test_production_logging_masks_id_numbers_phones_and_complainant_names(
        capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        configure_logging("INFO", json_format=True, pii_key=b"k" * 32)
        with record_context("6f1c2a3e-0000-4000-8000-000000000001"):
            logging.getLogger("sgw.test").warning(
                "complaint from %s, phone %s, landline 0571-87654321, unit 91330111MA2CJ8KD04",
                "330102199002273041", "13912345678", extra={"complainant_name": "张三", "ticket": "T-1"})
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
    line = capsys.readouterr().err.strip().splitlines()[-1]
    out = json.loads(line)
    tag = PiiTagger(b"k" * 32)
    for secret in ("330102199002273041", "13912345678", "0571-87654321", "张三"):
        assert secret not in line
    assert tag("330102199002273041") in out["message"] and tag("13912345678") in out["message"]
    assert out["complainant_name"] == tag("张三")
    assert "91330111MA2CJ8KD04" in out["message"]  # a unit's credit code is not personal information
    assert out["record_id"] == "6f1c2a3e-0000-4000-8000-000000000001" and out["ticket"] == "T-1"


def test_masking_leaves_record_ids_and_timestamps_alone() -> None:
    masker = PiiMasker(PiiTagger(b"k" * 32))
    text = "record 0f0e6b1c-1234-4abc-8def-1234567890ab at 20250610103000 batch 2019041100002"
    assert masker.text(text) == text
