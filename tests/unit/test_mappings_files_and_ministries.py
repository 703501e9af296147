"""Specific outcomes of the ministry-soap, eco-rest, batch-files and credit-publication mappings.

The generic test runs every golden example; these tests pin the outcomes the contracts insist on
(the bad batch file's rejected rows, 万元 conversions, dates, derivations) on the real samples.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from connectors.codecs import decode
from mapping.compiler import CompiledMapping, load_mapping
from mapping.findings import Finding
from mapping.standard import load_standard
from mapping.validation import Validator

ROOT = Path(__file__).resolve().parents[2]
MAPPINGS = ROOT / "config" / "mappings"
SAMPLES = ROOT / "config" / "samples"
RECEIVED_AT = "2025-06-28T09:00:00+08:00"
BAD_CSV = "batch-files/113301220025023382_XZCF_20250612_002.csv"
GOOD_CSV = "batch-files/113301220025023382_XZCF_20250612_001.csv"
XLSX = "batch-files/11330127002503410C_XZCF_20250612_001.xlsx"
XML = "batch-files/11330106002500121C_XZCF_20250620_001.xml"
TONGLU_SCJ = "桐庐县示例市场监督管理局"

Results = list[tuple[dict[str, Any], list[Finding]]]

MY_MAPPINGS = (
    "ministry-soap.inspection",
    "ministry-soap.penalty",
    "eco-rest.penalty",
    "batch-files.penalty-csv",
    "batch-files.penalty-xlsx",
    "batch-files.penalty-xml",
    "credit-publication.license-v2",
    "credit-publication.penalty-v2",
    "credit-publication.penalty-v1",
    "credit-publication.license-v1",
)


@cache
def mapping(name: str) -> CompiledMapping:
    return load_mapping(MAPPINGS / f"{name}.yaml")


@cache
def validator() -> Validator:
    return Validator(load_standard("1.0"))


def run(name: str, payload: Any, meta: Mapping[str, Any] | None = None) -> Results:
    """Map and validate as ingest does: transform findings plus the validator's, gateway fields filled."""
    out: Results = []
    for mapped in mapping(name).map(payload, dict(meta or {})):
        record = dict(mapped.record)
        record.update(received_at=RECEIVED_AT, connector="test", standard_version="1.0",
                      record_id="00000000-0000-5000-8000-000000000000")
        out.append((record, [*mapped.findings, *validator().validate(record)]))
    return out


def sample(name: str, relative: str, meta: Mapping[str, Any] | None = None) -> Results:
    return run(name, decode(mapping(name).format, (SAMPLES / relative).read_bytes()), meta)


def errors(findings: list[Finding]) -> set[tuple[str, str]]:
    return {(f.code, f.field) for f in findings if f.is_error}


def accepted(results: Results) -> list[dict[str, Any]]:
    assert [errors(f) for _, f in results] == [set()] * len(results)
    return [r for r, _ in results]


@pytest.mark.parametrize("name", MY_MAPPINGS)
def test_mapping_loads_with_examples_for_its_kind(name: str) -> None:
    compiled = mapping(name)
    assert compiled.name == name
    assert compiled.examples, "every mapping carries golden examples"


# --- batch files -------------------------------------------------------------------------------

TONGLU = "113301220025023382"
CSV_META = {"provider_uscc": TONGLU, "file_mtime": "2025-06-12T17:45:00+08:00"}


def summarise(finding: Finding) -> str:
    """The batch result file's E code for a finding (batch-files README, result file section)."""
    if finding.code == "REQUIRED":
        return "E101"
    if finding.code == "CODE_UNKNOWN":
        return "E104"
    if finding.code == "TYPE":
        return "E105" if finding.field in ("decided_at",) else "E106"
    return "E110" if finding.code.startswith("RULE:") else finding.code


def test_bad_batch_csv_rejects_exactly_rows_2_3_5_6() -> None:
    results = sample("batch-files.penalty-csv", BAD_CSV, CSV_META)
    rejected = [i + 1 for i, (_, findings) in enumerate(results) if errors(findings)]
    assert rejected == [2, 3, 5, 6]
    assert errors(results[2][1]) == {("REQUIRED", "decision_doc_no")}
    assert errors(results[4][1]) == {("CODE_UNKNOWN", "penalty_types"), ("CODE_UNKNOWN", "penalty_types[0]")}
    assert errors(results[5][1]) == {("TYPE", "decided_at")}
    # Row 8 repeats row 4: same record, so the connector's in-file duplicate check (E108) sees it.
    assert results[7][0] == results[3][0]


def test_bad_batch_csv_codes_match_the_expected_result_file() -> None:
    results = sample("batch-files.penalty-csv", BAD_CSV, CSV_META)
    text = (SAMPLES / BAD_CSV.replace(".csv", ".result.csv")).read_bytes().decode("gbk")
    expected = {int(row["行号"]): row["错误代码"] for row in csv.DictReader(io.StringIO(text))}
    for row in (3, 5, 6):
        assert {summarise(f) for f in results[row - 1][1] if f.is_error} == {expected[row]}
    # Row 2: the counterparty USCC fails its check character. The standard checks counterparty_id_no
    # through rule CPT-001 (its identifier depends on counterparty_id_type), which says why.
    (finding,) = [f for f in results[1][1] if f.is_error]
    assert (finding.code, finding.field) == ("RULE:CPT-001", "counterparty_id_no")
    assert "IDENTIFIER_CHECKSUM" in finding.message_en
    assert expected[2] == "E102"


def test_valid_batch_csv_maps_all_20_rows_accepted() -> None:
    meta = {**CSV_META, "file_mtime": "2025-06-12T17:31:02+08:00"}
    records = accepted(sample("batch-files.penalty-csv", GOOD_CSV, meta))
    assert len(records) == 20
    assert {r["counterparty_nature"] for r in records} == {"1", "2", "3"}
    person = next(r for r in records if r["source_record_id"] == "CF3301222025000117")
    assert (person["counterparty_nature"], person["counterparty_id_type"], person["counterparty_id_no"]) == (
        "1", "111", "33012219921103048X")
    first = records[0]
    assert first["penalty_types"] == ["没收违法所得", "罚款"]
    assert first["fine_amount_yuan"] == "50000.00"
    assert first["ext"] == {"legal_rep_name": "吴示例", "confiscated_amount_yuan": "3260.00"}
    assert first["submitted_at"] == "2025-06-12T17:31:02+08:00"
    assert {r["provider_uscc"] for r in records} == {TONGLU}


def test_xlsx_reads_date_cells_and_the_chinese_text_date_of_row_3() -> None:
    meta = {"provider_uscc": "11330127002503410C", "file_mtime": "2025-06-12T16:20:00+08:00"}
    records = accepted(sample("batch-files.penalty-xlsx", XLSX, meta))
    assert [r["decided_at"] for r in records] == [
        "2025-06-02", "2025-06-05", "2025-06-09", "2025-06-10", "2025-06-11"]
    assert records[0]["penalty_types"] == ["没收违法所得", "没收非法财物", "罚款"]
    assert records[0]["fine_amount_yuan"] == "25000.00"


def test_xml_submitted_at_is_the_header_create_time_else_the_marker_time() -> None:
    payload = decode("xml", (SAMPLES / XML).read_bytes())
    meta = {"provider_uscc": "11330106002500121C", "file_mtime": "2025-06-20T18:00:41+08:00"}
    with_header = accepted(run("batch-files.penalty-xml", payload, {**meta, "header": payload["Header"]}))
    assert {r["submitted_at"] for r in with_header} == {"2025-06-20T18:00:00+08:00"}
    without = accepted(run("batch-files.penalty-xml", payload, meta))
    assert {r["submitted_at"] for r in without} == {"2025-06-20T18:00:41+08:00"}
    assert with_header[1]["ext"] == {"legal_rep_name": "张示例", "confiscated_amount_yuan": "120.00"}


# --- ministry SOAP -----------------------------------------------------------------------------

def test_ministry_inspections_cut_the_division_and_split_inspectors() -> None:
    page = "ministry-soap/query-inspections-response-page1.xml"
    records = accepted(sample("ministry-soap.inspection", page))
    assert [r["admin_division_code"] for r in records] == ["330110"] * 3
    assert records[1]["inspector_names"] == ["杨演示", "朱示例", "韩样例"]
    assert [(r["check_form"], r["check_category"]) for r in records] == [
        ("01", "日常检查"), ("02", "专项检查"), ("01", "双随机抽查")]
    assert records[2]["operation"] == "u"
    assert records[2]["random_check_plan_id"] == "SSJ-YJ-2025-011"


def test_ministry_empty_last_page_gives_no_record() -> None:
    page = "ministry-soap/query-inspections-response-page2-empty.xml"
    assert sample("ministry-soap.inspection", page) == []


def test_ministry_penalties_person_labels_and_deletion() -> None:
    records = accepted(sample("ministry-soap.penalty", "ministry-soap/query-penalties-response-page1.xml"))
    unit, person, deleted = records
    assert (unit["fine_amount_yuan"], unit["penalty_types"], unit["closing_exec_result"]) == (
        "30000.00", ["罚款"], "未履行")
    assert (person["counterparty_nature"], person["counterparty_id_type"]) == ("1", "111")
    assert person["counterparty_id_no"] == "330125197501305170"
    assert person["penalty_types"] == ["警告", "罚款"]
    # an update is submitted at its update time (the closing came after the first TBSJ)
    assert person["submitted_at"] == "2025-06-27T15:44:10+08:00"
    assert deleted["operation"] == "d"
    assert unit["admin_reconsideration"] == unit["admin_litigation"] == "无"


# --- eco REST ----------------------------------------------------------------------------------

def test_eco_rest_converts_wanyuan_and_builds_the_action_name() -> None:
    page1 = accepted(sample("eco-rest.penalty", "eco-rest/penalties-page-1.json"))
    page2 = accepted(sample("eco-rest.penalty", "eco-rest/penalties-page-2-last.json"))
    assert [r["fine_amount_yuan"] for r in page1 + page2] == ["236000.00", "5000.00", "125000.00", "500.00"]
    assert page1[0]["penalty_action_name"] == "对杭州样例印染有限公司的行政处罚（杭环富罚〔2025〕12号）"
    assert page1[0]["legal_basis"] == (
        "《中华人民共和国水污染防治法》第十条；《中华人民共和国水污染防治法》第八十三条第（二）项")
    assert page1[0]["penalty_types"] == ["罚款", "限制开展生产经营活动"]
    assert page1[0]["case_source"] == "非现场监管"
    assert [r["operation"] for r in page2] == ["d", "i"]


def test_eco_rest_six_decimal_fine_and_missing_check_action() -> None:
    item = json.loads((SAMPLES / "eco-rest/penalties-page-2-last.json").read_text("utf-8"))["items"][1]
    item.update(fineAmount="0.123456", violatedProvision=None, checkActionNo=None)
    ((record, findings),) = run("eco-rest.penalty", {"items": [item]})
    assert record["fine_amount_yuan"] == "1234.56"
    assert record["legal_basis"] == "《中华人民共和国大气污染防治法》第一百一十九条第二款"
    assert errors(findings) == {("REQUIRED", "check_action_no")}


# --- credit publication ------------------------------------------------------------------------

def test_credit_v2_penalties_amounts_operations_and_placeholder() -> None:
    page = "credit-publication/inbound-v2-cf-page.json"
    records = [r for r, _ in sample("credit-publication.penalty-v2", page)]
    assert [r["fine_amount_yuan"] for r in records] == ["5000.00", "10000.00", "5000.00"]
    assert [r["operation"] for r in records] == ["i", "i", "d"]
    assert records[2]["confiscated_amount_yuan"] == "42.00"
    assert records[2]["penalty_categories"] == ["没收违法所得", "罚款"]


def test_credit_v2_placeholder_uscc_passes_for_a_registered_individual_business() -> None:
    row = json.loads((SAMPLES / "credit-publication/inbound-v2-cf-page.json").read_text("utf-8"))["rows"][2]
    ((record, findings),) = run("credit-publication.penalty-v2", {"rows": [{**row, "SJZT": "1"}]})
    assert (record["counterparty_category"], record["uscc"]) == ("个体工商户", "00000000000000000X")
    assert errors(findings) == set()
    no_reg_no = {**row, "SJZT": "1", "CF_XDR_GSZC": ""}
    ((_, findings),) = run("credit-publication.penalty-v2", {"rows": [no_reg_no]})
    assert ("REQUIRED", "business_reg_no") in errors(findings)


def test_credit_v2_licences_accepted_with_division_from_the_source_unit() -> None:
    page = "credit-publication/inbound-v2-xk-page.json"
    records = accepted(sample("credit-publication.license-v2", page))
    assert [r["admin_division_code"] for r in records] == ["330106", "330122"]
    assert records[0]["business_reg_no"] == "330106000123458"
    configured = accepted(sample("credit-publication.license-v2", page, {"admin_division_code": "330100"}))
    assert {r["admin_division_code"] for r in configured} == {"330100"}


def test_credit_v1_penalties_fine_from_text_categories_and_derivations() -> None:
    meta = {"provider_uscc": TONGLU, "source_org_name": TONGLU_SCJ}
    company, person, revoked = (r for r, _ in sample(
        "credit-publication.penalty-v1", "credit-publication/inbound-v1-2016-cf.csv", meta))
    assert company["fine_amount_yuan"] == "3000.00"
    assert company["penalty_categories"] == ["罚款", "没收违法所得"]
    assert company["source_record_id"] == "杭州市西湖区示例市场监督管理局/杭西市监罚〔2016〕0245号"
    assert company["counterparty_category"] == "法人及非法人组织"
    assert company["admin_division_code"] == "330106"
    assert company["org_code"] == "MA27XY8Q3"
    assert (person["counterparty_category"], person["person_id_type"]) == ("自然人", "111")
    assert person["fine_amount_yuan"] == "2000.00"
    assert (revoked["operation"], revoked["fine_amount_yuan"]) == ("d", "50000.00")
    assert {r["submitted_at"] for r in (company, person)} == {
        "2016-09-20T15:22:08+08:00", "2017-05-08T09:10:44+08:00"}


def test_credit_v1_deletion_passes_once_the_penalty_body_is_configured() -> None:
    meta = {"provider_uscc": TONGLU, "source_org_name": TONGLU_SCJ, "penalty_org_uscc": TONGLU}
    results = sample("credit-publication.penalty-v1", "credit-publication/inbound-v1-2016-cf.csv", meta)
    assert errors(results[2][1]) == set()
    assert ("REQUIRED", "effective_until") in errors(results[1][1])   # v1 has no 处罚有效期


def test_credit_v1_licence_columns() -> None:
    row = {"XK_WSH": "桐市监许〔2016〕0301号", "XK_XMMC": "食品流通许可", "XK_SPLB": "普通",
           "XK_NR": "准予许可", "XK_XDR": "周某某", "XK_XDR_SFZ": "330122197806152313",
           "XK_JDRQ": "2016/08/01", "XK_JZQ": "长期", "XK_XZJG": TONGLU_SCJ, "XK_ZT": "1",
           "DFBM": "330122", "SJC": "2016/08/02 09:30:00"}
    meta = {"provider_uscc": TONGLU, "source_org_name": TONGLU_SCJ, "issuing_org_uscc": TONGLU}
    ((record, findings),) = run("credit-publication.license-v1", [row], meta)
    assert errors(findings) == set()
    assert record["operation"] == "d"
    assert record["valid_to"] == "2099-12-31"
    assert record["license_content"] == "准予许可；食品流通许可"
    assert (record["counterparty_category"], record["person_id_type"]) == ("自然人", "111")
    assert record["source_record_id"] == "桐庐县示例市场监督管理局/桐市监许〔2016〕0301号"
