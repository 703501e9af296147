"""Rules of complaint (CMP-*), the 双公示 kinds (CRD-*, CLI-*, CPE-*) and credit_list (CLS-*)."""

from __future__ import annotations

import pytest

from tests.unit.test_rules import DROP, FakeHistory, MinimalHistory, check, fields, sample

PLACEHOLDER = "00000000000000000X"
VALID_RIC = "330106198503121231"
BAD_RIC = "110105194912310021"


# --- complaint -------------------------------------------------------------------------------------


def test_cmp_001_registration_not_after_submission() -> None:
    assert fields("CMP-001", sample("complaint_12345")) == []
    late = sample("complaint_12345", registered_at="2025-06-12T17:00:01+08:00")
    assert fields("CMP-001", late) == ["registered_at"]


def test_cmp_002_closed_not_before_registration_date() -> None:
    assert fields("CMP-002", sample("complaint_12345", closed_at="2025-06-01")) == []
    assert fields("CMP-002", sample("complaint_12345", closed_at="2025-05-31")) == ["closed_at"]
    assert fields("CMP-002", sample("complaint_12345", closed_at=DROP)) == []


def test_cmp_003_acceptance_not_before_registration_date() -> None:
    assert fields("CMP-003", sample("complaint_12315", accept_decided_at="2025-06-03")) == []
    assert fields("CMP-003", sample("complaint_12315", accept_decided_at="2025-06-02")) == [
        "accept_decided_at"
    ]


def test_cmp_004_acceptance_within_7_working_days() -> None:
    # Registered Tue 2025-06-03; Dragon Boat holiday was 05-31..06-02, so no holiday after it:
    # working days 06-04 .. 06-12 are 7 (Wed, Thu, Fri, Mon-Thu).
    assert fields("CMP-004", sample("complaint_12315", accept_decided_at="2025-06-12")) == []
    assert fields("CMP-004", sample("complaint_12315", accept_decided_at="2025-06-13")) == [
        "accept_decided_at"
    ]


def test_cmp_004_counts_the_state_council_holidays() -> None:
    # National Day 2025: 10-01..10-08 off, Sun 09-28 and Sat 10-11 are working days.
    registered = "2025-09-30T10:00:00+08:00"
    record = sample("complaint_12315", registered_at=registered, accept_decided_at="2025-10-14")
    assert fields("CMP-004", record) == []  # 10-09, 10-10, 10-11, 10-13, 10-14 = 5 working days
    record["accept_decided_at"] = "2025-10-17"  # + 10-15, 10-16, 10-17 = 8
    assert fields("CMP-004", record) == ["accept_decided_at"]


def test_cmp_004_only_for_12315_complaints() -> None:
    late = {"accept_decided_at": "2025-07-30"}
    assert fields("CMP-004", sample("complaint_12315", request_type="举报", **late)) == []
    assert fields("CMP-004", sample("complaint_12315", channel="12345", **late)) == []


def test_cmp_005_mediation_only_for_complaints() -> None:
    assert fields("CMP-005", sample("complaint_12315")) == []
    assert fields("CMP-005", sample("complaint_12315", request_type="举报")) == ["mediation_method"]
    only_result = sample("complaint_12315", request_type="举报", mediation_method=DROP)
    assert fields("CMP-005", only_result) == ["mediation_result"]


def test_cmp_006_fields_of_another_channel() -> None:
    assert fields("CMP-006", sample("complaint_12345")) == []
    assert fields("CMP-006", sample("complaint_12315")) == []
    mixed = sample("complaint_12345", disputed_amount_yuan="10.00", mediation_method="即时调解")
    assert sorted(fields("CMP-006", mixed)) == ["disputed_amount_yuan", "mediation_method"]
    assert fields("CMP-006", sample("complaint_12315", urgency="一般")) == ["urgency"]
    # a channel no field is meant for: every channel-specific field is flagged
    assert fields("CMP-006", sample("complaint_12345", channel="网站")) == ["category_code", "urgency"]


def test_cmp_007_no_mediation_when_not_accepted() -> None:
    refused = sample("complaint_12315", accept_decision="不予受理", rejection_reason="不属于本部门职责")
    assert fields("CMP-007", refused) == ["mediation_method", "mediation_result"]
    refused.update(mediation_method=None, mediation_result="")
    assert fields("CMP-007", refused) == []


@pytest.mark.parametrize("number", ["91330106MA2H7K3P2R", VALID_RIC])
def test_cmp_008_respondent_uscc_or_ric(number: str) -> None:
    assert fields("CMP-008", sample("complaint_12345", respondent_id_no=number)) == []


@pytest.mark.parametrize("number", ["91330106MA2H7K3P2Q", BAD_RIC, "110105491231002", "ABC"])
def test_cmp_008_refuses_other_numbers(number: str) -> None:
    found = check("CMP-008", sample("complaint_12345", respondent_id_no=number))
    assert [v.field for v in found] == ["respondent_id_no"]
    assert number not in found[0].detail_en + found[0].detail_zh


def test_cmp_009_requester_document() -> None:
    assert (
        fields("CMP-009", sample("complaint_12315", requester_id_type="111", requester_id_no=VALID_RIC)) == []
    )
    found = check("CMP-009", sample("complaint_12315", requester_id_type="111", requester_id_no=BAD_RIC))
    assert [v.field for v in found] == ["requester_id_no"]
    assert BAD_RIC not in found[0].detail_en + found[0].detail_zh
    uscc = sample("complaint_12315", requester_id_type="001", requester_id_no=VALID_RIC)
    assert fields("CMP-009", uscc) == ["requester_id_no"]
    passport = sample("complaint_12315", requester_id_type="414", requester_id_no="E12345678")
    assert fields("CMP-009", passport) == []


# --- 双公示 counterparty (CRD) ----------------------------------------------------------------------


def test_crd_001_placeholder_only_for_an_individual_business_with_reg_no() -> None:
    individual = sample("credit_license", uscc=PLACEHOLDER)
    assert fields("CRD-001", individual) == []
    assert fields("CRD-001", sample("credit_license", uscc=PLACEHOLDER, business_reg_no=DROP)) == ["uscc"]
    assert fields("CRD-001", sample("credit_penalty", uscc=PLACEHOLDER)) == ["uscc"]
    assert fields("CRD-001", sample("credit_penalty")) == []


def test_crd_002_individual_business_uscc_starts_with_92() -> None:
    assert fields("CRD-002", sample("credit_license")) == []
    assert fields("CRD-002", sample("credit_license", uscc="91330106MA2H7K3P2R")) == ["uscc"]
    assert fields("CRD-002", sample("credit_license", uscc=PLACEHOLDER)) == []


def test_crd_003_organisation_uscc_not_92() -> None:
    assert fields("CRD-003", sample("credit_penalty")) == []
    assert fields("CRD-003", sample("credit_penalty", uscc="92330106MA2KQ7T8XF")) == ["uscc"]


def test_crd_004_document_numbers() -> None:
    assert fields("CRD-004", sample("credit_penalty")) == []
    record = sample(
        "credit_penalty", legal_rep_id_no=BAD_RIC, person_id_type="001", person_id_no="91330106MA2H7K3P2Q"
    )
    found = check("CRD-004", record)
    assert [v.field for v in found] == ["person_id_no", "legal_rep_id_no"]
    assert all(BAD_RIC not in v.detail_en + v.detail_zh for v in found)
    passport = sample("credit_penalty", legal_rep_id_type="414", legal_rep_id_no="E12345678")
    assert fields("CRD-004", passport) == []


def test_crd_005_natural_person_has_no_entity_codes() -> None:
    person = sample(
        "credit_penalty",
        counterparty_category="自然人",
        uscc=DROP,
        person_id_type="111",
        person_id_no=VALID_RIC,
    )
    assert fields("CRD-005", person) == []
    person.update(uscc="91330106MA2H7K3P2R", org_code="MA2H7K3P2")
    assert fields("CRD-005", person) == ["uscc", "org_code"]


def test_crd_006_org_code_inside_the_uscc() -> None:
    assert fields("CRD-006", sample("credit_penalty", org_code="MA2H7K3P2")) == []
    assert fields("CRD-006", sample("credit_penalty", org_code="L07196379")) == ["org_code"]
    assert fields("CRD-006", sample("credit_license", uscc=PLACEHOLDER, org_code="L07196379")) == []


def test_crd_007_registration_number_region() -> None:
    assert fields("CRD-007", sample("credit_license")) == []
    assert fields("CRD-007", sample("credit_license", business_reg_no="440305594022440")) == [
        "business_reg_no"
    ]
    assert fields("CRD-007", sample("credit_license", business_reg_no="44030559402244")) == []  # 14 digits
    assert (
        fields("CRD-007", sample("credit_license", uscc=PLACEHOLDER, business_reg_no="440305594022440")) == []
    )


def test_crd_008_type_and_number_together() -> None:
    assert fields("CRD-008", sample("credit_penalty")) == []
    assert fields("CRD-008", sample("credit_penalty", legal_rep_id_type=DROP)) == ["legal_rep_id_type"]
    assert fields("CRD-008", sample("credit_penalty", person_id_type="111")) == ["person_id_no"]


# --- credit_license and credit_penalty ------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "rule_id", "changes", "reported"),
    [
        ("credit_license", "CLI-001", {"valid_to": "2025-05-05"}, "valid_from"),
        ("credit_license", "CLI-002", {"decided_on": "2025-05-08"}, "decided_on"),
        ("credit_license", "CLI-003", {"valid_from": "2025-05-05"}, "valid_from"),
        ("credit_penalty", "CPE-001", {"decided_on": "2025-06-21"}, "decided_on"),
        ("credit_penalty", "CPE-002", {"effective_until": "2025-06-17"}, "effective_until"),
        ("credit_penalty", "CPE-003", {"publicity_until": "2025-06-17"}, "publicity_until"),
        ("credit_list", "CLS-001", {"removed_on": "2025-07-01"}, "removed_on"),
        ("credit_list", "CLS-002", {"listed_on": "2025-07-03"}, "listed_on"),
        ("credit_list", "CLS-002", {"removed_on": "2025-07-03"}, "removed_on"),
    ],
)
def test_credit_date_order(name: str, rule_id: str, changes: dict[str, str], reported: str) -> None:
    assert fields(rule_id, sample(name)) == []
    assert fields(rule_id, sample(name, **changes)) == [reported]


def test_cpe_004_fine_category_needs_a_positive_fine() -> None:
    assert fields("CPE-004", sample("credit_penalty")) == []
    assert fields("CPE-004", sample("credit_penalty", fine_amount_yuan="0.00")) == ["fine_amount_yuan"]


def test_cpe_005_a_fine_needs_the_fine_category() -> None:
    assert fields("CPE-005", sample("credit_penalty", penalty_categories=["警告"])) == ["penalty_categories"]
    assert (
        fields("CPE-005", sample("credit_penalty", penalty_categories=["警告"], fine_amount_yuan="0.00"))
        == []
    )


def test_cpe_006_fine_equals_the_accepted_penalty() -> None:
    key = ("penalty", ("11330106002500121C", "杭西市监罚〔2025〕118号"))
    same = FakeHistory(accepted={key: {"fine_amount_yuan": "5000.00"}})
    assert fields("CPE-006", sample("credit_penalty"), same) == []
    assert fields("CPE-006", sample("credit_penalty", fine_amount_yuan="5000.0"), same) == []
    wan_yuan = sample("credit_penalty", fine_amount_yuan="0.50")  # 0.5 万元 left unconverted
    assert fields("CPE-006", wan_yuan, same) == ["fine_amount_yuan"]
    assert fields("CPE-006", wan_yuan, FakeHistory()) == []
    assert fields("CPE-006", wan_yuan, MinimalHistory()) == []  # no accepted_value: nothing to compare


def test_cls_003_reason_code_only_for_the_abnormal_list() -> None:
    assert fields("CLS-003", sample("credit_list")) == []
    assert fields("CLS-003", sample("credit_list", list_type="严重违法失信名单")) == ["listed_reason_code"]


def test_cls_004_three_years_on_the_abnormal_list() -> None:
    received = {"received_at": "2025-07-02T17:00:10+08:00"}
    assert fields("CLS-004", sample("credit_list", listed_on="2022-07-02", **received)) == []
    assert fields("CLS-004", sample("credit_list", listed_on="2022-07-01", **received)) == ["listed_on"]
    removed = sample("credit_list", listed_on="2020-01-01", removed_on="2021-01-01")
    assert fields("CLS-004", removed) == []
    other_list = sample("credit_list", listed_on="2020-01-01", list_type="严重违法失信名单")
    assert fields("CLS-004", other_list) == []


def test_cls_004_on_29_february() -> None:
    leap = {"received_at": "2028-02-29T09:00:00+08:00"}
    assert fields("CLS-004", sample("credit_list", listed_on="2025-02-28", **leap)) == []
    assert fields("CLS-004", sample("credit_list", listed_on="2025-02-27", **leap)) == ["listed_on"]
