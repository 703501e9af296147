"""The alert rules and the Grafana dashboard refer to metrics the gateway really exposes, with labels
it really sets; the rules load in promtool when it is installed."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from monitoring.metrics import PrometheusHooks, StoreGauges

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "monitoring" / "alerts" / "sgw.rules.yml"
DASHBOARD = ROOT / "monitoring" / "grafana" / "sgw-dashboard.json"
METRIC = re.compile(r"\b(sgw_[a-z0-9_]+)(\{[^}]*\})?")
MATCHER_LABEL = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)")
BY_LABELS = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")
REQUIRED_ALERTS = {"SgwConnectorSilent", "SgwOutboxGrowing", "SgwDeadLetters", "SgwRejectionsOverdue",
                   "SgwTargetCircuitOpen"}


def exposed_series() -> dict[str, set[str]]:
    """Every series name the gateway exposes, with its label names (every metric given a sample)."""
    hooks = PrometheusHooks()
    hooks.envelope_received("c")
    hooks.record_outcome("c", "penalty", "rejected", ["REQUIRED"], department="eco")
    hooks.store_write_failed("c")
    hooks.delivery_result("a", "penalty", "delivered", 0.5, department="eco")
    hooks.connector_event("c", "messages")
    hooks.connector_gauge("c", "devices", 1.0, key="330106")
    hooks.connector_state("c", True, datetime.now(UTC))
    hooks.watch_stores(lambda: StoreGauges({"a": 1}, {"a": 2.0}, {"a": 0}, {"eco": 1}, {"eco": 0}))
    hooks.watch_circuits(lambda: {"a": "closed"})
    series: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(hooks.exposition().decode()):
        for sample in family.samples:
            series.setdefault(sample.name, set()).update(sample.labels)
    return series


def check_expression(expr: str, series: dict[str, set[str]]) -> list[str]:
    problems = []
    found = METRIC.findall(expr)
    if not found:
        problems.append(f"{expr!r} refers to no sgw_ metric")
    labels_in_use: set[str] = set()
    for name, matchers in found:
        if name not in series:
            problems.append(f"{expr!r}: no such series {name!r}")
            continue
        labels_in_use |= series[name]
        for label in MATCHER_LABEL.findall(matchers or ""):
            if label not in series[name]:
                problems.append(f"{expr!r}: {name} has no label {label!r}")
    for group in BY_LABELS.findall(expr):
        for label in filter(None, (part.strip() for part in group.split(","))):
            if label not in labels_in_use | {"le"}:
                problems.append(f"{expr!r}: aggregates by unknown label {label!r}")
    return problems


def test_the_check_itself_catches_unknown_metrics_and_labels() -> None:
    series = exposed_series()
    assert check_expression("sgw_outbox_depth > 0", series) == []
    assert check_expression("sgw_outbox_dept > 0", series)
    assert check_expression('sgw_outbox_depth{department="x"} > 0', series)
    assert check_expression("sum by (connector) (sgw_outbox_depth)", series)
    assert check_expression("up == 0", series)


def test_alert_rules_are_well_formed_and_use_exposed_metrics() -> None:
    document: Any = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    series = exposed_series()
    names, problems = set(), []
    assert isinstance(document, dict) and set(document) == {"groups"}
    for group in document["groups"]:
        assert set(group) <= {"name", "interval", "rules"} and group["name"] and group["rules"]
        for rule in group["rules"]:
            assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule
            assert rule["alert"] not in names, f"duplicate alert {rule['alert']}"
            names.add(rule["alert"])
            assert rule["labels"]["severity"] in {"warning", "critical"}
            assert rule["annotations"]["summary"] and rule["annotations"]["description"]
            if "for" in rule:
                assert re.fullmatch(r"\d+[smhd]", rule["for"]), rule["for"]
            problems += check_expression(rule["expr"], series)
    assert problems == []
    assert not REQUIRED_ALERTS - names, "an alert the issue asks for is missing"


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_alert_rules_load_in_promtool() -> None:
    promtool = shutil.which("promtool")
    assert promtool is not None
    result = subprocess.run([promtool, "check", "rules", str(RULES)], capture_output=True, text=True, timeout=30,
                            check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_grafana_dashboard_queries_use_exposed_metrics() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    series = exposed_series()
    expressions = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    expressions += [v["query"]["query"] for v in dashboard["templating"]["list"] if v["type"] == "query"]
    assert len(expressions) >= 10
    problems = [p for expr in expressions for p in check_expression(expr, series)]
    assert problems == []
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])
    assert dashboard["uid"] and dashboard["title"]
