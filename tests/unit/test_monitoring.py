from __future__ import annotations

import json
import logging

from prometheus_client.parser import text_string_to_metric_families

from monitoring.logs import JsonFormatter, PiiTagger
from monitoring.metrics import PrometheusHooks


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
