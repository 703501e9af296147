"""SOAP codec: envelope unwrapping and faults."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors.codecs import DecodeLimits, SoapFault, SoapFaultError, decode, parse_fault
from gateway.errors import PayloadError

SOAP = Path(__file__).resolve().parents[2] / "config" / "samples" / "ministry-soap"
LIMITS = DecodeLimits()


def test_inspections_page_is_the_response_elements_content() -> None:
    tree = decode("soap", (SOAP / "query-inspections-response-page1.xml").read_bytes())
    page = tree["return"]
    assert (page["returnCode"], page["totalCount"], page["pageNo"]) == ("0000", "3", "1")
    records = page["records"]["record"]
    assert [r["JCBH"] for r in records] == [
        "YJJC2025330110000412", "YJJC2025330110000415", "YJJC2025330110000388"
    ]
    assert records[0]["JCRY"] == "沈示例,韩样例"
    assert records[2]["SSJHBH"] == "SSJ-YJ-2025-011"
    assert "QYDZ" not in records[2]
    assert [r["CZLX"] for r in records] == ["I", "I", "U"]


def test_empty_last_page_has_empty_records() -> None:
    tree = decode("soap", (SOAP / "query-inspections-response-page2-empty.xml").read_bytes())
    assert tree["return"]["records"] == ""
    assert tree["return"]["pageNo"] == "2"


def test_penalties_page() -> None:
    page = decode("soap", (SOAP / "query-penalties-response-page1.xml").read_bytes())
    records = page["return"]["records"]["record"]
    assert records[1]["SFZH"] == "330125197501305170"
    assert records[1]["CFZL"] == "1,3"
    assert records[2]["CZLX"] == "D"
    assert records[0]["CFJDSWH"] == "杭余应急罚〔2025〕31号"


def test_request_body_is_unwrapped_too() -> None:
    tree = decode("soap", (SOAP / "query-inspections-request.xml").read_bytes())
    assert tree == {
        "startTime": "20250603000000", "endTime": "20250604000000", "pageNo": "1", "pageSize": "3"
    }


def test_fault_raises_with_its_parts() -> None:
    with pytest.raises(SoapFaultError) as caught:
        decode("soap", (SOAP / "fault-invalid-credentials.xml").read_bytes())
    error = caught.value
    assert isinstance(error, PayloadError)
    assert error.code == "SOAP_FAULT"
    assert error.fault.faultcode == "wsse:FailedAuthentication"
    assert error.fault.error_code == "1001"
    assert "errorCode 1001" in str(error)
    assert "The security token could not be authenticated" in str(error)


def test_parse_fault() -> None:
    fault = parse_fault((SOAP / "fault-invalid-credentials.xml").read_bytes(), limits=LIMITS)
    assert fault == SoapFault(
        faultcode="wsse:FailedAuthentication",
        faultstring="The security token could not be authenticated or authorized",
        error_code="1001",
        error_message="接入账号或密码错误（连续失败5次将锁定30分钟，剩余4次）",
    )
    assert parse_fault((SOAP / "query-inspections-response-page1.xml").read_bytes(), limits=LIMITS) is None


def _fault_envelope(code: str, string: str, error_code: str | None) -> bytes:
    detail = (
        f'<detail><ns2:ServiceFault xmlns:ns2="http://ws.aqzf.yjgl.example/"><errorCode>{error_code}</errorCode>'
        f"<errorMsg>请求过于频繁，请稍后重试</errorMsg></ns2:ServiceFault></detail>"
        if error_code else ""
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">'
        f"<soap:Body><soap:Fault><faultcode>{code}</faultcode><faultstring>{string}</faultstring>{detail}"
        "</soap:Fault></soap:Body></soap:Envelope>"
    ).encode()


def test_server_fault_with_rate_limit_code() -> None:
    fault = parse_fault(_fault_envelope("soap:Server", "Too many requests", "3001"), limits=LIMITS)
    assert fault is not None
    assert (fault.faultcode, fault.error_code) == ("soap:Server", "3001")
    assert fault.error_message == "请求过于频繁，请稍后重试"


def test_fault_without_detail() -> None:
    fault = parse_fault(_fault_envelope("soap:Server", "boom", None), limits=LIMITS)
    assert fault == SoapFault("soap:Server", "boom", None, None)


def test_soap12_fault() -> None:
    data = (
        b'<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"><env:Body><env:Fault>'
        b"<env:Code><env:Value>env:Receiver</env:Value></env:Code>"
        b'<env:Reason><env:Text xml:lang="en">Internal error</env:Text></env:Reason>'
        b"<env:Detail><errorCode>5000</errorCode></env:Detail></env:Fault></env:Body></env:Envelope>"
    )
    fault = parse_fault(data, limits=LIMITS)
    assert fault == SoapFault("env:Receiver", "Internal error", "5000", None)


@pytest.mark.parametrize(
    "data",
    [
        b"<html><body>502 Bad Gateway</body></html>",
        b'<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body/></soap:Envelope>',
        b'<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Header/></soap:Envelope>',
    ],
)
def test_not_an_envelope_or_empty_body_is_malformed(data: bytes) -> None:
    with pytest.raises(PayloadError) as caught:
        decode("soap", data)
    assert caught.value.code == "MALFORMED"
    with pytest.raises(PayloadError):
        parse_fault(data, limits=LIMITS)
