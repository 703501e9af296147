"""The rule catalogue as a whole: every rule id of the standard is implemented exactly once,
and every valid sample record satisfies every rule that applies to its kind.

Per-rule tests are in test_rules_behaviour.py, test_rules_complaint_credit.py and
test_rules_objects_iot.py; they use the helpers below.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from mapping import rules
from mapping.rules import (
    CROSS_RECORD_RULES,
    FIELD_LEVEL_RULES,
    RULES,
    Violation,
    behaviour,
    common,
    complaint,
    counterparty,
    credit,
    credit_subject,
    iot,
    objects,
    penalty,
)

_ROOT = Path(__file__).resolve().parents[2]
_VALID = _ROOT / "tests/data/standard/records/valid"
_STANDARD = _ROOT / "mapping/standard/v1_0/unified-standard.yaml"
DROP = object()  # marks a field to remove in sample(...)


class FakeHistory:
    """A RecordHistory over in-memory sets (and the optional accepted_value capability)."""

    def __init__(
        self,
        accepted: Mapping[tuple[str, tuple[str, ...]], Mapping[str, Any]] | None = None,
        inspections: set[tuple[str, str]] | None = None,
    ) -> None:
        self.accepted = dict(accepted or {})
        self.inspections = set(inspections or ())

    def has_accepted(self, kind: str, business_key: tuple[str, ...]) -> bool:
        return (kind, business_key) in self.accepted

    def has_inspection(self, implementing_org_uscc: str, check_action_no: str) -> bool:
        return (implementing_org_uscc, check_action_no) in self.inspections

    def accepted_value(self, kind: str, business_key: tuple[str, ...], field: str) -> Any:
        return self.accepted.get((kind, business_key), {}).get(field)


class MinimalHistory:
    """A RecordHistory with only the two required methods."""

    def has_accepted(self, kind: str, business_key: tuple[str, ...]) -> bool:
        return True

    def has_inspection(self, implementing_org_uscc: str, check_action_no: str) -> bool:
        return True


@cache
def _sample_text(name: str) -> str:
    return (_VALID / f"{name}.json").read_text(encoding="utf-8")


def sample(name: str, **changes: Any) -> dict[str, Any]:
    """A valid sample record (file name without .json), with fields set or removed (DROP)."""
    record: dict[str, Any] = json.loads(_sample_text(name))
    for key, value in changes.items():
        if value is DROP:
            record.pop(key, None)
        else:
            record[key] = copy.deepcopy(value)
    return record


def check(rule_id: str, record: Mapping[str, Any], history: Any = None) -> list[Violation]:
    if rule_id in CROSS_RECORD_RULES:
        return list(CROSS_RECORD_RULES[rule_id](record, history or FakeHistory()))
    return list(RULES[rule_id](record))


def fields(rule_id: str, record: Mapping[str, Any], history: Any = None) -> list[str]:
    """The fields a rule reports on for a record (empty: the rule holds)."""
    found = check(rule_id, record, history)
    for violation in found:
        assert violation.detail_en and violation.detail_zh
    return [v.field for v in found]


@cache
def _standard() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(_STANDARD.read_text(encoding="utf-8"))
    return loaded


def _standard_rules() -> dict[str, dict[str, Any]]:
    std = _standard()
    found = {r["id"]: r for r in std["common"]["rules"]}
    for spec in std["kinds"].values():
        found.update({r["id"]: r for r in spec.get("rules", [])})
    return found


def _rules_of_kind(kind: str) -> list[str]:
    std = _standard()
    spec = std["kinds"][kind]
    ids = [r["id"] for r in std["common"]["rules"] if r["applies_to"] == "all"]
    ids += spec.get("shared_rules", [])
    ids += [r["id"] for r in spec.get("rules", [])]
    return [i for i in ids if i not in FIELD_LEVEL_RULES]


_SAMPLES = sorted(p.stem for p in _VALID.glob("*.json"))


def test_every_rule_of_the_standard_is_implemented_exactly_once() -> None:
    implemented = set(RULES) | set(CROSS_RECORD_RULES) | set(FIELD_LEVEL_RULES)
    assert implemented == set(_standard_rules())
    assert not set(RULES) & set(CROSS_RECORD_RULES)
    assert not (set(RULES) | set(CROSS_RECORD_RULES)) & FIELD_LEVEL_RULES


def test_cross_record_rules_are_the_standards_cross_record_scope() -> None:
    scoped = {i for i, r in _standard_rules().items() if r.get("scope") == "cross_record"}
    assert set(CROSS_RECORD_RULES) == scoped


def test_field_level_rules_are_the_value_by_value_ones() -> None:
    assert {"COM-002", "COM-003", "COM-004"} == FIELD_LEVEL_RULES
    assert "CRD-001" in RULES


def test_no_rule_module_overrides_another() -> None:
    tables = [
        m.RULES
        for m in (common, counterparty, behaviour, penalty, complaint, credit_subject, credit, objects, iot)
    ]
    assert sum(len(t) for t in tables) == len(RULES)
    assert len(common.CROSS_RECORD_RULES) + len(counterparty.CROSS_RECORD_RULES) + len(
        credit.CROSS_RECORD_RULES
    ) == len(CROSS_RECORD_RULES)


def test_public_surface() -> None:
    assert set(rules.__all__) >= {"RULES", "CROSS_RECORD_RULES", "FIELD_LEVEL_RULES", "Violation"}
    assert {"RecordHistory", "RuleFn", "CrossRecordRuleFn"} <= set(rules.__all__)
    with pytest.raises(TypeError):
        RULES["X-1"] = RULES["PEN-001"]  # type: ignore[index]


@pytest.mark.parametrize("name", _SAMPLES)
def test_valid_samples_satisfy_every_rule_of_their_kind(name: str) -> None:
    record = sample(name)
    history = FakeHistory(inspections={("11330106002500121C", "JC330106202506100031")})
    kind = record["record_kind"]
    broken = {rule_id: check(rule_id, record, history) for rule_id in _rules_of_kind(kind)}
    assert {k: v for k, v in broken.items() if v} == {}


def test_every_rule_holds_on_an_almost_empty_record() -> None:
    # Absent fields make statements vacuous; REQUIRED reports absence, not the rules.
    for kind in _standard()["kinds"]:
        record = {"record_kind": kind, "operation": "i"}
        for rule_id in _rules_of_kind(kind):
            assert check(rule_id, record) == [], rule_id


def _run_all(rule_ids: list[str], record: Mapping[str, Any], history: FakeHistory) -> None:
    for rule_id in rule_ids:
        rule = RULES.get(rule_id)
        if rule is not None:
            rule(record)
        else:
            CROSS_RECORD_RULES[rule_id](record, history)


def test_rules_of_a_penalty_record_are_fast() -> None:
    record, history = sample("penalty"), FakeHistory()
    applicable = _rules_of_kind("penalty")
    _run_all(applicable, record, history)  # warm up: the first call loads the standard's facts
    rounds = 2000
    started = time.perf_counter()
    for _ in range(rounds):
        _run_all(applicable, record, history)
    per_record_us = (time.perf_counter() - started) / rounds * 1e6
    assert per_record_us < 100  # generous: the budget of map + validate together is ~50 µs
