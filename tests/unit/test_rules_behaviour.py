"""Rules of the 监管行为 kinds: COM-001/005/006, CPT-*, BEH-001, INS-*, PEN-*, COE-*, OTH-*."""

from __future__ import annotations

import pytest

from tests.unit.test_rules import DROP, FakeHistory, MinimalHistory, check, fields, sample

ORG = "11330106002500121C"
PENALTY_KEY = ("penalty", (ORG, "杭西市监罚〔2025〕118号"))
VALID_RIC = "330106198503121231"


# --- common -----------------------------------------------------------------------------------


def test_com_001_allows_ten_minutes_of_clock_skew() -> None:
    assert fields("COM-001", sample("penalty", submitted_at="2025-06-20T18:20:00+08:00")) == []
    late = sample("penalty", submitted_at="2025-06-20T18:20:01+08:00")
    assert fields("COM-001", late) == ["submitted_at"]


def test_com_001_compares_instants_across_offsets() -> None:
    record = sample("penalty", submitted_at="2025-06-20T10:15:00+00:00")  # 18:15 in Shanghai
    assert fields("COM-001", record) == []


def test_com_005_insert_of_an_accepted_key() -> None:
    history = FakeHistory(accepted={PENALTY_KEY: {}})
    assert fields("COM-005", sample("penalty"), FakeHistory()) == []
    assert fields("COM-005", sample("penalty"), history) == ["operation"]
    assert fields("COM-005", sample("penalty", operation="u"), history) == []


def test_com_005_without_a_complete_business_key_holds() -> None:
    history = FakeHistory(accepted={PENALTY_KEY: {}})
    assert fields("COM-005", sample("penalty", decision_doc_no=DROP), history) == []


def test_com_005_uses_the_kinds_business_key() -> None:
    record = sample("iot_reading")
    key = ("iot_reading", ("330106ZH000000000771", "2011", "2025-06-10T10:00:00+08:00"))
    assert fields("COM-005", record, FakeHistory(accepted={key: {}})) == ["operation"]


@pytest.mark.parametrize("operation", ["u", "d"])
def test_com_006_update_or_delete_of_an_unknown_key(operation: str) -> None:
    record = sample("penalty", operation=operation)
    found = check("COM-006", record, FakeHistory())
    assert [v.field for v in found] == ["operation"]
    assert fields("COM-006", record, FakeHistory(accepted={PENALTY_KEY: {}})) == []
    assert fields("COM-006", sample("penalty"), FakeHistory()) == []


# --- counterparty (CPT) ----------------------------------------------------------------------------


def test_cpt_001_needs_a_valid_uscc_for_type_001() -> None:
    assert fields("CPT-001", sample("penalty")) == []
    bad = sample("penalty", counterparty_id_no="91330106MA2H7K3P2Q")
    found = check("CPT-001", bad)
    assert [v.field for v in found] == ["counterparty_id_no"]
    assert "IDENTIFIER_CHECKSUM" in found[0].detail_en
    assert "91330106MA2H7K3P2Q" not in found[0].detail_en + found[0].detail_zh


def test_cpt_001_refuses_the_placeholder() -> None:
    assert fields("CPT-001", sample("penalty", counterparty_id_no="00000000000000000X")) == [
        "counterparty_id_no"
    ]


def test_cpt_001_ignores_other_types() -> None:
    record = sample("penalty", counterparty_id_type="111", counterparty_id_no=VALID_RIC)
    assert fields("CPT-001", record) == []


@pytest.mark.parametrize("id_type", ["111", "112"])
def test_cpt_002_needs_a_valid_ric(id_type: str) -> None:
    person = {"counterparty_nature": "1", "counterparty_id_type": id_type}
    assert fields("CPT-002", sample("penalty", **person, counterparty_id_no=VALID_RIC)) == []
    bad_no = "110105194912310021"
    found = check("CPT-002", sample("penalty", **person, counterparty_id_no=bad_no))
    assert [v.field for v in found] == ["counterparty_id_no"]
    assert bad_no not in found[0].detail_en + found[0].detail_zh


def test_cpt_002_passes_a_legacy_15_digit_number() -> None:
    record = sample("penalty", counterparty_id_type="111", counterparty_id_no="110105491231002")
    assert fields("CPT-002", record) == []


def test_cpt_002_ignores_a_uscc_type() -> None:
    assert fields("CPT-002", sample("penalty")) == []


def test_cpt_003_legal_person_needs_001() -> None:
    assert fields("CPT-003", sample("penalty")) == []
    assert fields("CPT-003", sample("penalty", counterparty_id_type="099")) == ["counterparty_id_type"]
    assert fields("CPT-003", sample("penalty", counterparty_nature="3", counterparty_id_type="099")) == []


def test_cpt_004_citizen_needs_a_natural_persons_document() -> None:
    citizen = sample("penalty", counterparty_nature="1", counterparty_id_type="414")
    assert fields("CPT-004", citizen) == []
    assert fields("CPT-004", sample("penalty", counterparty_nature="1")) == ["counterparty_id_type"]
    assert fields("CPT-004", sample("penalty")) == []  # nature 2: not this rule's case


def test_cpt_005_other_organisation_needs_an_organisations_document() -> None:
    assert fields("CPT-005", sample("penalty", counterparty_nature="3", counterparty_id_type="099")) == []
    bad = sample("penalty", counterparty_nature="3", counterparty_id_type="111")
    assert fields("CPT-005", bad) == ["counterparty_id_type"]


def test_cpt_006_warns_on_types_the_national_validator_refuses() -> None:
    for id_type in ("001", "111", "112"):
        assert fields("CPT-006", sample("penalty", counterparty_id_type=id_type)) == []
    assert fields("CPT-006", sample("penalty", counterparty_id_type="414")) == ["counterparty_id_type"]


# --- BEH-001 ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["penalty", "coercion", "other_action"])
def test_beh_001_follow_up_act_needs_an_accepted_inspection(name: str) -> None:
    known = FakeHistory(inspections={(ORG, "JC330106202506100031")})
    assert fields("BEH-001", sample(name), known) == []
    assert fields("BEH-001", sample(name), FakeHistory()) == ["check_action_no"]
    other_org = FakeHistory(inspections={("11330106002500121X", "JC330106202506100031")})
    assert fields("BEH-001", sample(name), other_org) == ["check_action_no"]


# --- inspection ------------------------------------------------------------------------------------


def test_ins_001_two_different_inspectors() -> None:
    assert fields("INS-001", sample("inspection")) == []
    assert fields("INS-001", sample("inspection", inspector_names=["王示例"])) == ["inspector_names"]
    same = sample("inspection", inspector_names=["王示例", "王示例\u3000"])
    assert fields("INS-001", same) == ["inspector_names"]


def test_ins_001_messages_do_not_name_inspectors() -> None:
    found = check("INS-001", sample("inspection", inspector_names=["王示例", " 王示例"]))
    assert "王示例" not in found[0].detail_en + found[0].detail_zh


def test_ins_002_submission_strictly_after_the_check() -> None:
    assert fields("INS-002", sample("inspection")) == []
    same_time = sample("inspection", checked_at="2025-06-10T17:58:00+08:00")
    assert fields("INS-002", same_time) == ["checked_at"]
    assert fields("INS-002", sample("inspection", checked_at="2025-06-11T09:00:00+08:00")) == ["checked_at"]


def test_ins_003_one_cert_number_per_inspector() -> None:
    assert fields("INS-003", sample("inspection")) == []
    assert fields("INS-003", sample("inspection", inspector_cert_nos=DROP)) == []
    assert fields("INS-003", sample("inspection", inspector_cert_nos=["33010600123"])) == [
        "inspector_cert_nos"
    ]


def test_ins_004_check_items_differ() -> None:
    assert fields("INS-004", sample("inspection")) == []
    items = [
        {"item": "A", "result": "合格"},
        {"item": "B", "result": "合格"},
        {"item": "A", "result": "合格"},
    ]
    assert fields("INS-004", sample("inspection", check_items=items)) == ["check_items[2].item"]


@pytest.mark.parametrize("result", ["合格", "未发现问题"])
def test_ins_005_failed_item_contradicts_a_pass(result: str) -> None:
    assert fields("INS-005", sample("inspection")) == []
    assert fields("INS-005", sample("inspection", check_result=result)) == ["check_result"]
    passed = [{"item": "A", "result": "合格"}]
    assert fields("INS-005", sample("inspection", check_result=result, check_items=passed)) == []


def test_ins_006_impl_code_starts_with_the_implementing_body() -> None:
    assert fields("INS-006", sample("inspection")) == []
    other = sample("inspection", check_impl_code="11440305Y45JFFK68L3")
    assert fields("INS-006", other) == ["check_impl_code"]


# --- penalty ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule_id", "changes", "reported"),
    [
        ("PEN-001", {"case_filed_at": "2025-06-20"}, "case_filed_at"),
        ("PEN-002", {"case_filed_at": "2025-06-19"}, "case_filed_at"),
        ("PEN-003", {"closed_at": "2025-06-17"}, "decided_at"),
        ("PEN-004", {"decided_at": "2025-06-21", "closed_at": DROP}, "decided_at"),
        ("PEN-004", {"closed_at": "2025-06-21"}, "closed_at"),
    ],
)
def test_penalty_date_order(rule_id: str, changes: dict[str, object], reported: str) -> None:
    assert fields(rule_id, sample("penalty")) == []
    assert fields(rule_id, sample("penalty", **changes)) == [reported]


def test_pen_004_compares_the_shanghai_date_of_submission() -> None:
    # 2025-06-18T16:30Z is 2025-06-19 00:30 in Shanghai: a decision on the 19th is not later.
    record = sample("penalty", closed_at=DROP, decided_at="2025-06-19", submitted_at="2025-06-18T16:30:00Z")
    assert fields("PEN-004", record) == []


def test_pen_date_rules_hold_without_optional_dates() -> None:
    record = sample("penalty", case_filed_at=DROP, closed_at=DROP)
    assert [fields(r, record) for r in ("PEN-001", "PEN-002", "PEN-003", "PEN-004")] == [[], [], [], []]


def test_pen_005_fine_type_needs_a_fine() -> None:
    assert fields("PEN-005", sample("penalty")) == []
    assert fields("PEN-005", sample("penalty", fine_amount_yuan=DROP)) == ["fine_amount_yuan"]
    assert fields("PEN-005", sample("penalty", fine_amount_yuan="0.00")) == ["fine_amount_yuan"]


def test_pen_006_a_fine_needs_the_fine_type() -> None:
    assert fields("PEN-006", sample("penalty", penalty_types=["警告"])) == ["penalty_types"]
    assert fields("PEN-006", sample("penalty", penalty_types=["警告"], fine_amount_yuan="0.00")) == []


def test_pen_007_no_penalty_excludes_types_and_fine() -> None:
    clean = sample("penalty", no_penalty=True, penalty_types=DROP, fine_amount_yuan="0.00")
    assert fields("PEN-007", clean) == []
    assert fields("PEN-007", sample("penalty", no_penalty=True)) == ["penalty_types", "fine_amount_yuan"]
    assert fields("PEN-007", sample("penalty")) == []


def test_pen_008_summary_procedure_has_no_hearing() -> None:
    assert fields("PEN-008", sample("penalty", procedure_type="01")) == []
    assert fields("PEN-008", sample("penalty", procedure_type="01", hearing_held=True)) == ["hearing_held"]
    assert fields("PEN-008", sample("penalty", hearing_held=True)) == []


@pytest.mark.parametrize(
    ("nature", "fine", "reported"),
    [
        ("1", "200.00", []),
        ("1", "200.01", ["fine_amount_yuan"]),
        ("2", "3000.00", []),
        ("3", "3000.01", ["fine_amount_yuan"]),
    ],
)
def test_pen_009_summary_procedure_fine_limits(nature: str, fine: str, reported: list[str]) -> None:
    record = sample("penalty", procedure_type="01", counterparty_nature=nature, fine_amount_yuan=fine)
    assert fields("PEN-009", record) == reported
    assert fields("PEN-009", sample("penalty", counterparty_nature=nature, fine_amount_yuan=fine)) == []


def test_pen_010_summary_procedure_only_warning_or_fine() -> None:
    assert fields("PEN-010", sample("penalty", procedure_type="01")) == []
    record = sample(
        "penalty", procedure_type="01", penalty_types=["警告", "没收违法所得", "罚款", "责令关闭"]
    )
    assert fields("PEN-010", record) == ["penalty_types[1]", "penalty_types[3]"]


@pytest.mark.parametrize(
    ("rule_id", "flag", "detail"),
    [
        ("PEN-011", "legal_review", "legal_review_date"),
        ("PEN-011", "legal_review", "legal_review_opinion"),
        ("PEN-012", "collective_discussion", "collective_discussion_date"),
        ("PEN-012", "collective_discussion", "collective_discussion_conclusion"),
    ],
)
def test_pen_011_012_details_need_the_flag(rule_id: str, flag: str, detail: str) -> None:
    value = "2025-06-15" if detail.endswith("date") else "同意"
    assert fields(rule_id, sample("penalty", **{flag: True, detail: value})) == []
    assert fields(rule_id, sample("penalty", **{flag: False, detail: value})) == [flag]
    assert fields(rule_id, sample("penalty", **{flag: DROP, detail: value})) == [flag]
    assert fields(rule_id, sample("penalty", **{flag: False})) == []


def test_pen_013_paid_not_above_the_fine() -> None:
    assert fields("PEN-013", sample("penalty", fine_paid_yuan="5000.00")) == []
    assert fields("PEN-013", sample("penalty", fine_paid_yuan="5000.01")) == ["fine_paid_yuan"]
    assert fields("PEN-013", sample("penalty", fine_paid_yuan="6000.00", fine_amount_yuan=DROP)) == []


# --- coercion and other_action --------------------------------------------------------------------


def test_coe_001_measure_has_no_execution_type() -> None:
    assert fields("COE-001", sample("coercion")) == []
    assert fields("COE-001", sample("coercion", execution_type="代履行")) == ["execution_type"]


def test_coe_002_execution_has_no_measure_fields() -> None:
    execution = sample(
        "coercion",
        compulsion_kind="行政强制执行",
        execution_type="代履行",
        measure_type=DROP,
        measure_start_at=DROP,
        measure_end_at=DROP,
    )
    assert fields("COE-002", execution) == []
    execution.update(measure_type="扣押财物", measure_extension="30日")
    assert fields("COE-002", execution) == ["measure_type", "measure_extension"]


def test_coe_003_measure_expects_a_measure_type() -> None:
    assert fields("COE-003", sample("coercion")) == []
    assert fields("COE-003", sample("coercion", measure_type=DROP)) == ["measure_type"]


def test_coe_004_execution_expects_an_execution_type() -> None:
    execution = sample("coercion", compulsion_kind="行政强制执行", measure_type=DROP)
    assert fields("COE-004", execution) == ["execution_type"]
    execution["execution_type"] = "代履行"
    assert fields("COE-004", execution) == []


def test_coe_005_006_measure_dates() -> None:
    assert fields("COE-005", sample("coercion", measure_end_at="2025-06-11")) == ["measure_start_at"]
    assert fields("COE-006", sample("coercion", measure_start_at="2025-06-13")) == ["measure_start_at"]
    assert fields("COE-006", sample("coercion", measure_start_at="2025-06-12")) == []


def test_oth_001_002_action_dates() -> None:
    assert fields("OTH-001", sample("other_action")) == []
    assert fields("OTH-001", sample("other_action", ended_at="2025-06-09")) == ["started_at"]
    assert fields("OTH-002", sample("other_action", started_at="2025-06-12", ended_at=DROP)) == ["started_at"]


def test_cross_record_rules_accept_a_minimal_history() -> None:
    assert fields("BEH-001", sample("penalty"), MinimalHistory()) == []
    assert fields("COM-005", sample("penalty"), MinimalHistory()) == ["operation"]
