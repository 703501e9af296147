from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from mapping.findings import Finding
from mapping.messages import TEMPLATES, make_finding, quote_value, template_for
from mapping.standard import Standard, load_standard
from mapping.validation import Validator, compile_condition, describe_condition_zh

DATA = Path(__file__).resolve().parents[1] / "data" / "standard" / "records"
VALID = sorted((DATA / "valid").glob("*.json"))
CASES = json.loads((DATA / "invalid_cases.json").read_text(encoding="utf-8"))


@dataclass(frozen=True, slots=True)
class StubViolation:
    field: str
    detail_en: str
    detail_zh: str


class StubHistory:
    def has_accepted(self, kind: str, business_key: tuple[str, ...]) -> bool:
        return False

    def has_inspection(self, implementing_org_uscc: str, check_action_no: str) -> bool:
        return False


def sample(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((DATA / "valid" / name).read_text(encoding="utf-8"))
    return loaded


def field_validator(std: Standard | None = None, **kwargs: Any) -> Validator:
    """A validator with no cross-field rules: field-level checks only."""
    options: dict[str, Any] = {"rules": {}, "cross_record_rules": {}, "field_level_rules": frozenset()}
    options.update(kwargs)
    return Validator(std or load_standard(), **options)


def pairs(findings: Iterable[Finding]) -> set[tuple[str, str]]:
    return {(f.code, f.field) for f in findings}


def with_field(kind: str, field: str, **changes: Any) -> Standard:
    std = load_standard()
    spec = std.kinds[kind]
    fields = dict(spec.fields)
    fields[field] = replace(fields[field], **changes)
    return replace(std, kinds={**std.kinds, kind: replace(spec, fields=fields)})


# --- the sample records -------------------------------------------------------------------------

@pytest.mark.parametrize("path", VALID, ids=lambda p: p.name)
def test_valid_samples_have_no_findings_with_the_real_rules(path: Path) -> None:
    record = json.loads(path.read_text(encoding="utf-8"))
    assert Validator(load_standard()).validate(record) == []


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.name)
def test_valid_samples_have_no_field_findings(path: Path) -> None:
    assert field_validator().validate(json.loads(path.read_text(encoding="utf-8"))) == []


def test_every_kind_has_a_valid_sample() -> None:
    kinds = {json.loads(p.read_text(encoding="utf-8"))["record_kind"] for p in VALID}
    assert kinds == set(load_standard().kinds)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c["name"])
def test_invalid_cases_yield_their_expected_findings(case: dict[str, Any]) -> None:
    record = sample(case["base"])
    record.update(case.get("set", {}))
    for name in case.get("unset", []):
        record.pop(name, None)
    want = {(e["code"], e["field"]) for e in case["expect"]}
    for validator in (field_validator(), Validator(load_standard())):
        assert want <= pairs(validator.validate(record))


def test_the_real_rule_tables_cover_every_rule() -> None:
    assert Validator(load_standard()).unimplemented_rules == frozenset()


# --- one test per finding code ------------------------------------------------------------------

def test_kind_unknown_stops_validation() -> None:
    findings = field_validator().validate({"record_kind": ["penalty"], "x": 1})
    assert pairs(findings) == {("KIND_UNKNOWN", "record_kind")}
    assert "1.0" in findings[0].message_en


def test_unknown_field_top_level_and_in_items_but_ext_is_free() -> None:
    record = sample("iot_reading.json")
    record["ext"] = {"anything": [1, 2], "nested": {"x": None}}
    record["plan"] = "x"
    record["factors"][0]["extra"] = 1
    assert pairs(field_validator().validate(record)) == {
        ("UNKNOWN_FIELD", "plan"), ("UNKNOWN_FIELD", "factors[0].extra")}


def test_ext_must_be_an_object() -> None:
    record = sample("penalty.json") | {"ext": ["x"]}
    assert pairs(field_validator().validate(record)) == {("TYPE", "ext")}


@pytest.mark.parametrize("blank", [None, "", []])
def test_required_absent_values(blank: Any) -> None:
    record = sample("penalty.json") | {"decision_doc_no": blank}
    findings = field_validator().validate(record)
    assert pairs(findings) == {("REQUIRED", "decision_doc_no")}
    assert findings[0].message_zh == "处罚文书号（行政处罚决定书文号）（decision_doc_no）为必填项，未填写"
    assert findings[0].message_en == "decision_doc_no is required but absent"


def test_conditional_required_follows_its_condition() -> None:
    record = sample("penalty.json")
    del record["penalty_types"]
    record["fine_amount_yuan"] = "0.00"
    assert ("REQUIRED", "penalty_types") in pairs(field_validator().validate(record))
    record["no_penalty"] = True
    assert field_validator().validate(record) == []


def test_conditional_required_message_names_the_condition() -> None:
    record = sample("complaint_12315.json")
    del record["requester_phone"]
    [finding] = field_validator().validate(record)
    assert finding.message_zh.endswith("（条件：来源渠道为“12315”且诉求类型为“投诉”）")
    assert finding.message_en.endswith("(required when channel is 12315 and request_type is 投诉)")


def test_conditional_required_inside_list_items_uses_the_item() -> None:
    std = with_field("iot_reading", "factors", item_fields=tuple(
        replace(f, required="conditional", when={"field": "flag", "eq": "D"}) if f.name == "unit" else f
        for f in load_standard().kinds["iot_reading"].fields["factors"].item_fields))
    record = sample("iot_reading.json")
    record["factors"] = [{"code": "a34004", "value": "1.0", "flag": "D"}, {"code": "a34002", "value": "2.0"}]
    assert pairs(field_validator(std).validate(record)) == {("REQUIRED", "factors[0].unit")}


def test_required_in_list_items() -> None:
    record = sample("iot_reading.json")
    record["factors"] = [{"code": "a34004"}]
    assert pairs(field_validator().validate(record)) == {("REQUIRED", "factors[0].value")}


def test_delete_needs_only_common_and_key_fields_but_checks_what_is_present() -> None:
    record = {k: v for k, v in sample("penalty.json").items()
              if k in load_standard().common_fields or k in ("implementing_org_uscc", "decision_doc_no")}
    record["operation"] = "d"
    assert field_validator().validate(record) == []
    record["closed_at"] = "2025-02-30"
    del record["decision_doc_no"]
    assert pairs(field_validator().validate(record)) == {
        ("TYPE", "closed_at"), ("REQUIRED", "decision_doc_no")}


@pytest.mark.parametrize(("field", "value"), [
    ("penalty_action_name", 5),                      # number for a string
    ("penalty_action_name", " 前后有空格"),           # untrimmed
    ("illegal_facts", "事实\n"),                      # text trimmed too
    ("decided_at", "2025/06/18"),                    # date format
    ("decided_at", "2025-02-30"),                    # not a calendar date
    ("submitted_at", "2025-06-20T18:05:00"),         # naive datetime
    ("submitted_at", "2025-06-20T18:05:00Z"),        # other offset
    ("submitted_at", "2025-06-20T25:05:00+08:00"),   # not a time
    ("fine_amount_yuan", 5000),                      # JSON number
    ("fine_amount_yuan", "5e3"),                     # not plain notation
    ("hearing_held", "false"),
    ("hearing_held", 0),
    ("procedure_type", 1),                           # enum not a string
    ("penalty_types", "罚款"),                       # list expected
    ("penalty_types", ["罚款", "罚款"]),              # duplicates
    ("penalty_types", ["罚款", " 警告"]),             # untrimmed element
    ("ext", "x"),
])
def test_type_findings(field: str, value: Any) -> None:
    findings = field_validator().validate(sample("penalty.json") | {field: value})
    assert ("TYPE", field) in pairs(findings)
    assert all(f.severity == "error" for f in findings)


def test_integer_type_and_range() -> None:
    base = sample("iot_event.json")
    assert pairs(field_validator().validate(base | {"priority": True})) == {("TYPE", "priority")}
    assert pairs(field_validator().validate(base | {"priority": "3"})) == {("TYPE", "priority")}
    assert pairs(field_validator().validate(base | {"priority": 5})) == {("RANGE", "priority")}
    assert field_validator().validate(base | {"priority": 1}) == []


def test_decimal_range_is_inclusive() -> None:
    base = sample("iot_event.json")
    assert field_validator().validate(base | {"confidence": "1"}) == []
    assert field_validator().validate(base | {"confidence": "0.0"}) == []
    findings = field_validator().validate(base | {"confidence": "-0.01"})
    assert pairs(findings) == {("RANGE", "confidence")}
    assert "[0, 1]" in findings[0].message_en


def test_max_length_counts_characters_not_bytes() -> None:
    base = sample("penalty.json")
    assert field_validator().validate(base | {"case_source": "检" * 50}) == []
    findings = field_validator().validate(base | {"case_source": "检" * 51})
    assert pairs(findings) == {("MAX_LENGTH", "case_source")}
    assert "51" in findings[0].message_en and "50" in findings[0].message_en


def test_list_item_length_and_pattern() -> None:
    base = sample("iot_event.json")
    urls = ["https://a/b", "ftp://x", "https://" + "x" * 1000]
    findings = field_validator().validate(base | {"image_urls": urls})
    assert pairs(findings) == {("PATTERN", "image_urls[1]"), ("MAX_LENGTH", "image_urls[2]")}


def test_pattern_on_common_and_item_fields() -> None:
    record = sample("iot_reading.json") | {"connector": "Bad Connector"}
    record["factors"][0]["code"] = "a-1"
    assert pairs(field_validator().validate(record)) == {
        ("PATTERN", "connector"), ("PATTERN", "factors[0].code")}


def test_min_and_max_items() -> None:
    base = sample("iot_reading.json")
    one = base | {"factors": [{"code": "a1", "value": "1"}]}
    assert field_validator().validate(one) == []  # the standard's min_items is 1
    std = with_field("iot_reading", "factors", min_items=2, max_items=3)
    findings = field_validator(std).validate(one)
    assert pairs(findings) == {("MIN_ITEMS", "factors")}
    assert findings[0].message_en == "factors needs at least 2 items but has 1"
    four = base | {"factors": [{"code": c, "value": "1"} for c in ("a1", "a2", "a3", "a4")]}
    findings = field_validator(std).validate(four)
    assert pairs(findings) == {("MAX_ITEMS", "factors")}
    assert findings[0].message_en == "factors allows at most 3 items but has 4"
    assert findings[0].message_zh == "监测因子（factors）最多允许 3 项，实际 4 项"


def test_code_unknown_is_an_error_for_closed_and_a_warning_for_open_tables() -> None:
    base = sample("penalty.json")
    [closed] = field_validator().validate(base | {"procedure_type": "03"})
    assert (closed.code, closed.severity) == ("CODE_UNKNOWN", "error")
    assert "procedure_type" in closed.message_en
    [opened] = field_validator().validate(base | {"supervised_object_type": "餐馆"})
    assert (opened.code, opened.field) == ("CODE_UNKNOWN", "supervised_object_type")
    assert opened.severity == "warning"


def test_code_unknown_for_list_elements() -> None:
    findings = field_validator().validate(sample("penalty.json") | {"penalty_types": ["警告", "记过"]})
    assert pairs(findings) == {("CODE_UNKNOWN", "penalty_types[1]")}


def test_identifier_findings_and_severities() -> None:
    base = sample("penalty.json")
    [fmt] = field_validator().validate(base | {"provider_uscc": "91330106MO2H7K3P2R"})
    assert (fmt.code, fmt.field, fmt.severity) == ("IDENTIFIER_FORMAT", "provider_uscc", "error")
    [unknown] = field_validator().validate(base | {"admin_division_code": "339999"})
    assert (unknown.code, unknown.severity) == ("IDENTIFIER_UNKNOWN", "warning")
    officer = sample("officer.json")
    [legacy] = field_validator().validate(officer | {"id_card_no": "110105491231002"})
    assert (legacy.code, legacy.severity) == ("IDENTIFIER_LEGACY", "warning")


def test_uscc_exception_list_turns_the_checksum_error_into_a_warning() -> None:
    pilot = "91350100M0001TGQXM"
    record = sample("penalty.json") | {"provider_uscc": pilot}
    [strict] = field_validator().validate(record)
    assert (strict.code, strict.severity) == ("IDENTIFIER_CHECKSUM", "error")
    [lenient] = field_validator(uscc_exceptions=frozenset({pilot})).validate(record)
    assert (lenient.code, lenient.severity) == ("IDENTIFIER_CHECKSUM", "warning")


def test_today_fn_bounds_birth_dates() -> None:
    record = sample("officer.json")
    assert field_validator().validate(record) == []
    findings = field_validator(today_fn=lambda: date(1980, 1, 1)).validate(record)
    assert pairs(findings) == {("IDENTIFIER_FORMAT", "id_card_no")}


def test_township_codes_only_where_allowed() -> None:
    base = sample("complaint_12345.json")
    assert field_validator().validate(base | {"territory_code": "330106001"}) == []
    assert ("IDENTIFIER_FORMAT", "admin_division_code") in pairs(
        field_validator().validate(base | {"admin_division_code": "330106001"}))


def test_com_002_money_needs_two_decimals_and_no_sign() -> None:
    base = sample("penalty.json")
    for bad in ("5000", "5000.0", "5000.000", "-1.00"):
        findings = field_validator().validate(base | {"fine_amount_yuan": bad})
        assert pairs(findings) == {("RULE:COM-002", "fine_amount_yuan")}, bad
        assert findings[0].rule_id == "COM-002"
        assert findings[0].message_en.startswith("rule COM-002 failed: ")
    assert field_validator().validate(base | {"fine_amount_yuan": "0.00"}) == []
    # a decimal without unit yuan keeps its own scale
    assert field_validator().validate(sample("iot_event.json") | {"confidence": "0.9"}) == []


def test_com_003_sentinel_dates_and_datetimes() -> None:
    base = sample("penalty.json")
    assert pairs(field_validator().validate(base | {"closed_at": "0001-01-01"})) == {
        ("RULE:COM-003", "closed_at")}
    assert pairs(field_validator().validate(base | {"submitted_at": "1900-01-01T08:00:00+08:00"})) == {
        ("RULE:COM-003", "submitted_at")}
    assert field_validator().validate(base | {"case_filed_at": "1900-01-02"}) == []


def test_crd_001_placeholder_accepted_for_individual_business_with_registration() -> None:
    record = sample("credit_license.json") | {"uscc": "00000000000000000X"}
    assert field_validator().validate(record) == []
    # elsewhere the placeholder is just an invalid USCC
    other = sample("penalty.json") | {"provider_uscc": "00000000000000000X"}
    assert pairs(field_validator().validate(other)) == {("IDENTIFIER_CHECKSUM", "provider_uscc")}


def test_every_error_is_reported_not_only_the_first() -> None:
    record = sample("penalty.json") | {"hearing_held": "no", "decided_at": "x", "plan": 1}
    del record["illegal_facts"]
    assert pairs(field_validator().validate(record)) == {
        ("TYPE", "hearing_held"), ("TYPE", "decided_at"), ("UNKNOWN_FIELD", "plan"),
        ("REQUIRED", "illegal_facts")}


def test_repeated_values_give_the_same_findings() -> None:
    validator = field_validator()
    good = sample("penalty.json")
    bad = good | {"implementing_org_uscc": "11330106002500121D"}
    for _ in range(3):
        assert validator.validate(good) == []
        assert pairs(validator.validate(bad)) == {("IDENTIFIER_CHECKSUM", "implementing_org_uscc")}


# --- cross-field rules (against stub rule tables) -----------------------------------------------

Calls = list[str]


def recording_rule(calls: Calls, rule_id: str, field: str, fail: bool = True) -> Callable[..., Iterable[Any]]:
    def rule(record: Mapping[str, Any], *history: Any) -> Iterable[Any]:
        calls.append(rule_id)
        return [StubViolation(field, f"{rule_id} detail", f"{rule_id} 说明")] if fail else []
    return rule


def test_rule_findings_carry_severity_rule_id_and_messages() -> None:
    calls: Calls = []
    validator = field_validator(rules={
        "PEN-003": recording_rule(calls, "PEN-003", "closed_at"),
        "PEN-005": recording_rule(calls, "PEN-005", "fine_amount_yuan"),
        "PEN-001": recording_rule(calls, "PEN-001", "closed_at", fail=False),
    })
    findings = validator.validate(sample("penalty.json"))
    assert [(f.code, f.field, f.severity, f.rule_id) for f in findings] == [
        ("RULE:PEN-003", "closed_at", "error", "PEN-003"),
        ("RULE:PEN-005", "fine_amount_yuan", "warning", "PEN-005"),
    ]
    assert findings[0].message_zh == "违反规则 PEN-003：PEN-003 说明"
    assert findings[0].message_en == "rule PEN-003 failed: PEN-003 detail"
    assert sorted(calls) == ["PEN-001", "PEN-003", "PEN-005"]


def test_rule_skipped_when_one_of_its_fields_has_an_error() -> None:
    calls: Calls = []
    validator = field_validator(rules={"PEN-003": recording_rule(calls, "PEN-003", "closed_at"),
                                       "PEN-008": recording_rule(calls, "PEN-008", "hearing_held")})
    findings = validator.validate(sample("penalty.json") | {"closed_at": "2025-13-01"})
    assert calls == ["PEN-008"]
    assert pairs(findings) == {("TYPE", "closed_at"), ("RULE:PEN-008", "hearing_held")}
    # a warning on a field does not stop the rule
    calls.clear()
    validator.validate(sample("penalty.json") | {"supervised_object_type": "餐馆"})
    assert sorted(calls) == ["PEN-003", "PEN-008"]


def test_delete_runs_only_com_rules() -> None:
    calls: Calls = []
    validator = field_validator(rules={"PEN-003": recording_rule(calls, "PEN-003", "closed_at"),
                                       "COM-001": recording_rule(calls, "COM-001", "submitted_at")})
    findings = validator.validate(sample("penalty.json") | {"operation": "d"})
    assert calls == ["COM-001"]
    assert pairs(findings) == {("RULE:COM-001", "submitted_at")}


def test_cross_record_rules_run_only_with_history() -> None:
    calls: Calls = []
    validator = field_validator(cross_record_rules={
        "BEH-001": recording_rule(calls, "BEH-001", "check_action_no"),
        "COM-005": recording_rule(calls, "COM-005", "operation")})
    assert validator.validate(sample("penalty.json")) == []
    assert calls == []
    findings = validator.validate(sample("penalty.json"), StubHistory())
    assert [(f.code, f.severity) for f in findings] == [
        ("RULE:COM-005", "warning"), ("RULE:BEH-001", "warning")]
    calls.clear()
    validator.validate(sample("penalty.json") | {"operation": "d"}, StubHistory())
    assert calls == ["COM-005"]


def test_placeholder_rule_reported_once_when_the_rule_agrees() -> None:
    calls: Calls = []
    validator = field_validator(rules={"CRD-001": recording_rule(calls, "CRD-001", "uscc")})
    record = sample("credit_penalty.json") | {"uscc": "00000000000000000X"}
    findings = validator.validate(record)
    assert [f.code for f in findings] == ["RULE:CRD-001"]


def test_unimplemented_rules_are_listed() -> None:
    validator = field_validator(rules={"PEN-003": recording_rule([], "PEN-003", "closed_at")},
                                field_level_rules=frozenset({"COM-002"}))
    assert "PEN-001" in validator.unimplemented_rules
    assert "PEN-003" not in validator.unimplemented_rules
    assert "COM-002" not in validator.unimplemented_rules


# --- personal information never reaches a message -----------------------------------------------

def _pii_values(record: Mapping[str, Any], kind: str) -> list[str]:
    specs = load_standard().kinds[kind].fields
    return [str(v) for k, v in record.items() if k in specs and specs[k].pii and v]


@pytest.mark.parametrize(("base", "changes"), [
    ("complaint_12315.json", {"requester_phone": "phone:SECRET-13900"}),       # PATTERN
    ("complaint_12315.json", {"requester_name": " 周秘密 "}),                  # TYPE
    ("complaint_12315.json", {"requester_name": "周" * 51}),                   # MAX_LENGTH
    ("complaint_12315.json", {"requester_id_no": 330106198503121231}),         # TYPE, a number
    ("officer.json", {"id_card_no": "330106198503121232"}),                   # IDENTIFIER_CHECKSUM
    ("officer.json", {"id_card_no": "110105491231002"}),                      # IDENTIFIER_LEGACY
    ("penalty.json", {"counterparty_name": "张" * 201, "counterparty_nature": "1"}),
])
def test_messages_never_contain_pii_values(base: str, changes: dict[str, Any]) -> None:
    record = sample(base) | changes
    findings = Validator(load_standard()).validate(record)
    assert findings
    for secret in _pii_values(record, record["record_kind"]):
        for f in findings:
            assert secret.strip() not in f.message_zh and secret.strip() not in f.message_en, f


def test_non_pii_values_are_quoted_and_truncated() -> None:
    long_id = "bad id " + "x" * 43  # 50 characters: within max_length, fails the pattern
    [finding] = field_validator().validate(sample("iot_reading.json") | {"device_id": long_id})
    assert finding.code == "PATTERN"
    assert long_id[:30] in finding.message_en
    assert long_id not in finding.message_en
    assert "…" in finding.message_zh


# --- messages and conditions --------------------------------------------------------------------

def test_every_readme_code_has_a_template() -> None:
    codes = {"KIND_UNKNOWN", "VERSION_UNSUPPORTED", "UNKNOWN_FIELD", "REQUIRED", "TYPE", "MAX_LENGTH",
             "PATTERN", "RANGE", "MIN_ITEMS", "MAX_ITEMS", "CODE_UNKNOWN", "CODE_AMBIGUOUS",
             "IDENTIFIER_FORMAT", "IDENTIFIER_CHECKSUM", "IDENTIFIER_UNKNOWN", "IDENTIFIER_LEGACY"}
    assert codes | {"RULE"} == set(TEMPLATES)
    assert template_for("RULE:PEN-001") is TEMPLATES["RULE"]
    with pytest.raises(KeyError):
        template_for("NOPE")


def test_make_finding_for_mapping_stage_codes() -> None:
    f = make_finding("CODE_AMBIGUOUS", "penalty_types", severity="warning", label_zh="处罚种类",
                     value="没收违法所得、没收非法财物", codes="没收违法所得、没收非法财物")
    assert f.severity == "warning"
    assert f.message_zh.startswith("处罚种类（penalty_types）的旧组合类别“没收违法所得、没收非法财物”")
    v = make_finding("VERSION_UNSUPPORTED", "standard_version", version="2.0", supported="1.0")
    assert v.message_en == "standard version 2.0 is not supported by this gateway (supported: 1.0)"
    with pytest.raises(KeyError):
        make_finding("RANGE", "x")  # its bounds are missing: a programming error


def test_quote_value() -> None:
    assert quote_value("短") == "短"
    assert quote_value(True) == "true"
    assert quote_value(5000.0) == "5000.0"
    assert len(quote_value("x" * 100)) == 40


@pytest.mark.parametrize(("cond", "record", "holds"), [
    ({"field": "a", "eq": "1"}, {"a": "1"}, True),
    ({"field": "a", "eq": "1"}, {}, False),
    ({"field": "a", "ne": "1"}, {}, True),
    ({"field": "a", "in": ["1", "2"]}, {"a": "2"}, True),
    ({"field": "a", "in": ["1", "2"]}, {"a": None}, False),
    ({"field": "a", "not_in": ["1"]}, {}, True),
    ({"field": "a", "contains": "罚款"}, {"a": ["警告", "罚款"]}, True),
    ({"field": "a", "contains": "罚款"}, {"a": "罚款"}, False),
    ({"field": "a", "contains_any": ["x", "y"]}, {"a": ["y"]}, True),
    ({"field": "a", "present": True}, {"a": ""}, False),
    ({"field": "a", "absent": True}, {"a": []}, True),
    ({"all": [{"field": "a", "eq": 1}, {"not": {"field": "b", "eq": True}}]}, {"a": 1, "b": False}, True),
    ({"any": [{"field": "a", "eq": 1}, {"field": "b", "eq": True}]}, {"b": False}, False),
])
def test_condition_language(cond: dict[str, Any], record: dict[str, Any], holds: bool) -> None:
    assert compile_condition(cond)(record) is holds


def test_condition_description_in_chinese() -> None:
    cond = {"all": [{"field": "request_type", "eq": "投诉"}, {"not": {"field": "anonymous", "eq": True}}]}
    labels = {"request_type": "诉求类型", "anonymous": "是否匿名"}
    assert describe_condition_zh(cond, labels) == "诉求类型为“投诉”且并非（是否匿名为“是”）"
