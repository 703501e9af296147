from __future__ import annotations

import copy
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.errors import ConfigError
from mapping.codes import CodeTable
from mapping.standard import check_consistency, load_standard, supported_versions


def _raw_docs() -> tuple[dict[str, Any], dict[str, Any]]:
    folder = Path(__file__).resolve().parents[2] / "mapping" / "standard" / "v1_0"
    std = yaml.safe_load(folder.joinpath("unified-standard.yaml").read_text(encoding="utf-8"))
    tables = yaml.safe_load(folder.joinpath("code-tables.yaml").read_text(encoding="utf-8"))
    return std, tables


def test_supported_versions_lists_the_packaged_one() -> None:
    assert supported_versions() == ("1.0",)


def test_load_is_cached_and_has_every_kind() -> None:
    std = load_standard("1.0")
    assert load_standard() is std
    assert std.version == "1.0"
    assert set(std.kinds) == {
        "inspection", "penalty", "coercion", "other_action", "complaint", "credit_license",
        "credit_penalty", "credit_list", "supervised_object", "officer", "supervision_item",
        "iot_reading", "iot_event",
    }
    assert all(isinstance(t, CodeTable) for t in std.code_tables.values())


def test_unknown_version_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as info:
        load_standard("9.9")
    assert info.value.problems[0].startswith("VERSION_UNSUPPORTED")
    assert "1.0" in info.value.problems[0]


def test_fields_are_common_first_then_the_kind_in_yaml_order() -> None:
    raw, _ = _raw_docs()
    kind = load_standard().kinds["penalty"]
    common = [f["name"] for f in raw["common"]["fields"]]
    own = [f["name"] for f in raw["kinds"]["penalty"]["fields"]]
    assert list(kind.fields) == common + own
    assert kind.common_fields == frozenset(common)
    assert kind.business_key == ("implementing_org_uscc", "decision_doc_no")


def test_rules_are_general_then_shared_then_own() -> None:
    ids = [r.id for r in load_standard().kinds["penalty"].rules]
    assert ids[:6] == ["COM-001", "COM-002", "COM-003", "COM-004", "COM-005", "COM-006"]
    assert ids[6:13] == ["CPT-001", "CPT-002", "CPT-003", "CPT-004", "CPT-005", "CPT-006", "BEH-001"]
    assert ids[13:] == [f"PEN-{i:03d}" for i in range(1, 14)]
    complaint = [r.id for r in load_standard().kinds["complaint"].rules]
    assert not any(i.startswith(("CPT", "CRD", "BEH")) for i in complaint)
    assert "BEH-001" not in [r.id for r in load_standard().kinds["inspection"].rules]


def test_rule_attributes() -> None:
    std = load_standard()
    beh = std.rules["BEH-001"]
    assert beh.scope == "cross_record"
    assert beh.severity == "warning"
    assert beh.fields == ("check_action_no", "implementing_org_uscc")
    assert std.rules["COM-002"].field_selector == {"type": "decimal", "unit": "yuan"}
    assert std.rules["PEN-001"].scope == "record"


def test_field_attributes_are_typed() -> None:
    std = load_standard()
    penalty = std.kinds["penalty"].fields
    fine = penalty["fine_amount_yuan"]
    assert (fine.type, fine.unit, fine.required) == ("decimal", "yuan", False)
    assert penalty["counterparty_name"].pii is True  # pii: conditional counts as PII
    assert penalty["counterparty_name"].pii_when == {"field": "counterparty_nature", "eq": "1"}
    assert penalty["supervised_object_type"].code_table_mode == "open"
    assert penalty["procedure_type"].code_table_mode == "closed"
    types = penalty["penalty_types"]
    assert types.required == "conditional"
    assert types.when == {"not": {"field": "no_penalty", "eq": True}}
    assert types.min_items == 1
    assert std.common_fields["record_id"].filled_by == "gateway"
    assert std.common_fields["provider_uscc"].identifier == "uscc"
    lon = std.kinds["supervised_object"].fields["lon"]
    assert (lon.min, lon.max) == (Decimal("-180"), Decimal("180"))
    territory = std.kinds["complaint"].fields["territory_code"]
    assert territory.allow_township is True
    assert std.kinds["complaint"].fields["urgency"].channels == ("12345",)


def test_list_object_item_fields() -> None:
    factors = load_standard().kinds["iot_reading"].fields["factors"]
    assert [f.name for f in factors.item_fields] == ["code", "value", "flag", "sample_time", "unit"]
    code = factors.item_fields[0]
    assert (code.pattern, code.max_length, code.required) == ("[A-Za-z0-9]{2,16}", 16, True)
    assert factors.item_fields[2].code_table == "hj212_data_flag"


def test_shipped_files_are_consistent() -> None:
    std, tables = _raw_docs()
    assert check_consistency(std, tables, "1.0") == []


def test_consistency_check_lists_every_problem() -> None:
    std, tables = _raw_docs()
    broken = copy.deepcopy(std)
    penalty = broken["kinds"]["penalty"]
    penalty["fields"][0]["code_table"] = "no_such_table"
    penalty["rules"].append(dict(penalty["rules"][0]))  # duplicate PEN-001
    penalty["shared_rules"].append("CPT-999")
    penalty["business_key"] = ["implementing_org_uscc", "nonexistent"]
    penalty["fields"][1]["when"] = {"field": "ghost", "eq": "x"}
    penalty["fields"][1]["required"] = "conditional"
    penalty["fields"][2]["pattern"] = "([unclosed"
    problems = check_consistency(broken, tables, "1.0")
    text = "\n".join(problems)
    assert "code_table no_such_table does not exist" in text
    assert "PEN-001: duplicate rule id" in text
    assert "rule CPT-999 is not a common rule" in text
    assert "field nonexistent does not exist" in text
    assert "unknown field ghost" in text
    assert "pattern: does not compile" in text
    assert len(problems) >= 6


def test_consistency_check_catches_combined_alias_and_version_mismatch() -> None:
    std, tables = _raw_docs()
    broken = copy.deepcopy(tables)
    broken["tables"]["penalty_category"]["combined_aliases"][0]["maps_to"].append("不存在")
    broken["standard_version"] = "2.0"
    problems = check_consistency(std, broken, "1.0")
    assert any("maps to unknown code '不存在'" in p for p in problems)
    assert any("code-tables.yaml: standard_version" in p for p in problems)
