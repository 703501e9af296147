"""The ExchangeMessage XML: requests built in schema order, responses read safely.

Responses are parsed without DTDs, entities or network access (the platform is trusted, the path
to it less so).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from lxml import etree

from gateway.errors import TargetUnavailable

_OPS = {"i": "I", "u": "U", "d": "D"}


@dataclass(frozen=True, slots=True)
class Header:
    sender: str
    receiver: str
    flow: str
    item: str
    sn: str
    send_time: str            # yyyy-MM-dd HH:mm:ss, Beijing
    operator: str | None = None
    contacts: str | None = None


@dataclass(frozen=True, slots=True)
class RecordXml:
    local_id: str
    operation: str            # the standard's i / u / d
    fields: Sequence[tuple[str, str]]


@dataclass(frozen=True, slots=True)
class Result:
    seq: int
    local_id: str
    status: str
    code: str
    message: str
    field: str | None
    platform_id: str | None


@dataclass(frozen=True, slots=True)
class Answer:
    ref_sn: str | None
    result_code: str
    result_message: str
    results: tuple[Result, ...]


def _sub(parent: etree._Element, tag: str, text: str | None = None) -> etree._Element:
    child = etree.SubElement(parent, tag)
    if text:
        child.text = text
    return child


def build_request(header: Header, records: Sequence[RecordXml]) -> bytes:
    root = etree.Element("ExchangeMessage", version="2.0")
    head = _sub(root, "Header")
    for tag, text in (("sender", header.sender), ("receiver", header.receiver), ("flow", header.flow),
                      ("item", header.item), ("sn", header.sn), ("securityType", "none")):
        _sub(head, tag, text)
    if header.operator:
        _sub(head, "operator", header.operator)
    if header.contacts:
        _sub(head, "contacts", header.contacts)
    _sub(head, "sendTime", header.send_time)
    _sub(head, "recordCount", str(len(records)))
    body = _sub(root, "Body")
    for seq, record in enumerate(records, 1):
        element = etree.SubElement(body, "record", seq=str(seq), op=_OPS[record.operation],
                                   localId=record.local_id)
        fields = _sub(element, "fields")
        for tag, text in record.fields:
            _sub(fields, tag, text)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


def _parser() -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


def _text(element: etree._Element, path: str) -> str | None:
    found = element.find(path)
    return None if found is None else (found.text or "")


def parse_answer(data: bytes) -> Answer:
    """The platform's answer; an unreadable one is transient (resent under the same sn)."""
    try:
        root = etree.fromstring(data, parser=_parser())
    except etree.XMLSyntaxError as exc:
        raise TargetUnavailable(f"信用平台应答无法解析 / unreadable answer from the credit platform: {exc}") from exc
    result_code = _text(root, "Header/resultCode")
    if root.tag != "ExchangeMessage" or result_code is None:
        raise TargetUnavailable("信用平台应答缺少 resultCode / the credit platform's answer has no resultCode")
    results = tuple(
        Result(seq=int(r.get("seq", "0")), local_id=r.get("localId", ""), status=_text(r, "status") or "",
               code=_text(r, "code") or "", message=_text(r, "message") or "", field=_text(r, "field"),
               platform_id=_text(r, "platformId"))
        for r in root.iterfind("Body/result"))
    return Answer(ref_sn=_text(root, "Header/refSn"), result_code=result_code,
                  result_message=_text(root, "Header/resultMessage") or "", results=results)
