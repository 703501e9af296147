"""ExchangeMessage building (schema order, 万元, labels) validated by the XSD; answers parsed."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from adapters.base import OutboundRecord
from adapters.credit_exchange import CreditExchangeAdapter, CreditExchangeConfig
from adapters.credit_exchange.fields import FieldError, render_fields
from adapters.credit_exchange.message import parse_answer
from tests.conftest import SAMPLES

XSD = Path(__file__).resolve().parent.parent / "data" / "credit_publication" / "exchange-message.xsd"
CREDIT = SAMPLES / "credit-publication"


def tonglu_penalty(**changes: Any) -> dict[str, Any]:
    """The standard record behind record 2 of outbound-request-cf.xml."""
    record: dict[str, Any] = {
        "record_kind": "credit_penalty", "source_record_id": "CF-TL-101", "operation": "i",
        "provider_uscc": "113301220025023382", "admin_division_code": "330122",
        "submitted_at": "2025-06-27T17:00:00+08:00", "record_id": "cp-5a2c9e0f7d3b4a18",
        "counterparty_name": "桐庐示例食品有限公司", "counterparty_category": "法人及非法人组织",
        "uscc": "91330122MA2J8Q5R54", "legal_rep_name": "吴示例", "decision_doc_no": "桐市监罚〔2025〕101号",
        "violation_type": "生产经营不符合食品安全标准的食品",
        "illegal_facts": "经查，当事人生产的“示例牌”速冻汤圆菌落总数不符合食品安全标准，货值金额3260元。",
        "legal_basis": "《中华人民共和国食品安全法》第一百二十四条第一款第（三）项",
        "penalty_categories": ["没收违法所得", "罚款"], "penalty_content": "没收违法所得3260元，并处罚款50000元",
        "fine_amount_yuan": "50000.00", "confiscated_amount_yuan": "3260.00", "decided_on": "2025-05-06",
        "effective_until": "2028-05-05", "publicity_until": "2025-08-06",
        "penalty_org_name": "桐庐县示例市场监督管理局",
        "penalty_org_uscc": "113301220025023382", "source_org_name": "桐庐县示例市场监督管理局",
        "source_org_uscc": "113301220025023382", "ext": {"x": 1},
    }
    record.update(changes)
    return record


def licence(**changes: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "record_kind": "credit_license", "operation": "u", "record_id": "00000000-0000-4000-8000-000000000007",
        "counterparty_name": "西湖区示例小吃店", "counterparty_category": "个体工商户", "uscc": "92330106MA2KQ7T8XF",
        "business_reg_no": "330106000123458", "legal_rep_name": "张示例", "legal_rep_id_type": "111",
        "legal_rep_id_no": "330106198503121231", "decision_doc_name": "食品经营许可决定书",
        "decision_doc_no": "杭西市监许〔2025〕0888号", "license_category": "普通", "certificate_name": "食品经营许可证",
        "license_no": "JY23301060123456", "license_content": "准予食品经营许可：小餐饮", "decided_on": "2025-05-06",
        "valid_from": "2025-05-06", "valid_to": "2030-05-05", "issuing_org_name": "杭州市西湖区示例市场监督管理局",
        "issuing_org_uscc": "11330106002500121C", "status": "1", "source_org_name": "杭州市西湖区示例市场监督管理局",
        "source_org_uscc": "11330106002500121C",
    }
    record.update(changes)
    return record


def adapter() -> CreditExchangeAdapter:
    return CreditExchangeAdapter(CreditExchangeConfig(url="http://x/sgs/exchange", api_key="k",  # type: ignore[arg-type]
                                                      operator="sgw", contacts="0571-87000000"),
                                 clock=lambda: datetime(2025, 6, 27, 10, 0, tzinfo=UTC))


def test_fields_equal_the_sample_record_in_schema_order() -> None:
    sample = etree.parse(str(CREDIT / "outbound-request-cf.xml"))
    expected = [(f.tag, f.text or "") for f in sample.find("Body/record[@seq='2']/fields")]  # type: ignore[union-attr]
    assert render_fields("credit_penalty", tonglu_penalty()) == expected


@pytest.mark.parametrize(("yuan", "wan"), [("5000.00", "0.5"), ("50000.00", "5"), ("3260.00", "0.326"),
                                           ("0.01", "0.000001"), ("123456789.00", "12345.6789"), (None, "")])
def test_amounts_go_back_to_wan_yuan(yuan: str | None, wan: str) -> None:
    fields = dict(render_fields("credit_penalty", tonglu_penalty(fine_amount_yuan=yuan)))
    assert fields["CF_NR_FK"] == wan


def test_a_built_message_is_valid_against_the_xsd_and_carries_op_and_local_id() -> None:
    from adapters.credit_exchange.adapter import _prepare
    a = adapter()
    penalties = [_prepare(OutboundRecord(r["record_id"], "credit_penalty", r))
                 for r in (tonglu_penalty(), tonglu_penalty(record_id="cp-2", operation="u", person_id_type="111",
                                                             counterparty_category="自然人", uscc=None))]
    xml = a.message("credit_penalty", penalties)  # type: ignore[arg-type]
    doc = etree.fromstring(xml)
    schema = etree.XMLSchema(etree.parse(str(XSD)))
    assert schema.validate(doc), schema.error_log
    assert doc.findtext("Header/flow") == "SGS_CF" and doc.findtext("Header/recordCount") == "2"
    assert doc.findtext("Header/sendTime") == "2025-06-27 18:00:00"
    assert [(r.get("seq"), r.get("op"), r.get("localId")) for r in doc.iterfind("Body/record")] == [
        ("1", "I", "cp-5a2c9e0f7d3b4a18"), ("2", "U", "cp-2")]
    assert doc.findtext("Body/record[@seq='2']/fields/CF_XDR_ZJLX") == "身份证"
    xk = a.message("credit_license", [_prepare(OutboundRecord("l1", "credit_license", licence()))])  # type: ignore[list-item]
    assert schema.validate(etree.fromstring(xk)), schema.error_log


def test_sn_is_stable_for_the_same_records_and_valid() -> None:
    from adapters.credit_exchange.adapter import _prepare
    a = adapter()
    one = [_prepare(OutboundRecord("cp-1", "credit_penalty", tonglu_penalty(record_id="cp-1")))]
    sn = a.sn_for("CF", one)  # type: ignore[arg-type]
    assert sn == a.sn_for("CF", one) and sn.startswith("SGWZJ-CF-")  # type: ignore[arg-type]
    assert sn != a.sn_for("CF", one * 2)  # type: ignore[arg-type]
    assert 8 <= len(sn) <= 64


@pytest.mark.parametrize(("kind", "record", "code", "element"), [
    ("credit_penalty", tonglu_penalty(decided_on="2025/5/6"), "1002", "CF_JDRQ"),
    ("credit_penalty", tonglu_penalty(person_id_type="112", person_id_no="x"), "1004", "CF_XDR_ZJLX"),
    ("credit_penalty", tonglu_penalty(fine_amount_yuan="-5.00"), "1002", "CF_NR_FK"),
    ("credit_penalty", tonglu_penalty(penalty_org_uscc="123"), "1002", "CF_CFJGDM"),
    ("credit_license", licence(status=None), "1001", "XK_ZT"),
    ("credit_license", licence(license_category="许可"), "1004", "XK_XKLB"),
])
def test_values_that_would_break_the_schema_are_caught_per_record(
        kind: str, record: dict[str, Any], code: str, element: str) -> None:
    with pytest.raises(FieldError) as caught:
        render_fields(kind, record)
    assert (caught.value.code, caught.value.element) == (code, element)


def test_the_sample_answers_are_read() -> None:
    answer = parse_answer((CREDIT / "outbound-response-cf.xml").read_bytes())
    assert answer.result_code == "0000" and answer.ref_sn == "SGWZJ-CF-20250627180000-0001"
    assert [(r.local_id, r.status, r.code) for r in answer.results] == [
        ("cp-0b7e4d2a9c1f4e61", "accepted", "0000"), ("cp-5a2c9e0f7d3b4a18", "accepted", "0000"),
        ("cp-c41d8e2b6f9a0735", "rejected", "1007")]
    assert answer.results[2].field == "CF_WSH" and answer.results[0].platform_id == "CFZJ20250627000381"
    refused = parse_answer((CREDIT / "outbound-response-refused.xml").read_bytes())
    assert refused.result_code == "9001" and refused.results == ()


def test_an_answer_with_entities_is_not_expanded() -> None:
    hostile = (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e "boom">]><ExchangeMessage><Header>'
               b"<resultCode>0000</resultCode><resultMessage>&e;</resultMessage></Header><Body/></ExchangeMessage>")
    assert "boom" not in parse_answer(hostile).result_message
