"""A fake provincial credit platform taking 双公示 ExchangeMessages (``sources/credit-publication/`` (b)).

Checks the API key (401), the XSD (9001), the header against the body (9002); answers per record;
a resent ``sn`` gets the stored answer of the first. Records what it stored, per localId, so tests
can count exactly-once. Faults: those of ``PeerServer`` plus ``busy(n)`` (resultCode 9003).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from aiohttp import web
from lxml import etree

from tests.peers.outbound_peer import PeerServer

XSD = Path(__file__).resolve().parent.parent / "data" / "credit_publication" / "exchange-message.xsd"
PATH = "/sgs/exchange"
API_KEY = "xypt-test-key-0001"


@lru_cache(maxsize=1)
def schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(XSD)))


@dataclass(frozen=True)
class Received:
    status: int
    sn: str | None
    result_code: str | None
    local_ids: tuple[str, ...]
    fields: tuple[dict[str, str], ...]
    ops: tuple[str, ...]


def _el(parent: etree._Element, tag: str, text: str | None) -> None:
    child = etree.SubElement(parent, tag)
    if text is not None:
        child.text = text


class CreditPlatformServer(PeerServer):
    def __init__(self, *, api_key: str = API_KEY, max_records: int = 1000) -> None:
        super().__init__(client_max_size=11 * 1_048_576)
        self.api_key, self.max_records = api_key, max_records
        self.received: list[Received] = []
        self.stored: dict[str, int] = {}
        self._answers: dict[str, bytes] = {}
        self._busy_next = 0
        self._serial = 0

    def routes(self, app: web.Application) -> None:
        app.router.add_post(PATH, self._handle)

    def busy(self, times: int) -> None:
        self._busy_next = times

    def statuses(self) -> list[int]:
        return [r.status for r in self.received]

    async def _handle(self, request: web.Request) -> web.Response:
        fault = await self.transport_fault()
        if fault is not None:
            status, retry = fault
            self.received.append(Received(status, None, None, (), (), ()))
            return web.Response(status=status, text="injected fault",
                                headers={"Retry-After": str(retry)} if retry is not None else None)
        if request.headers.get("X-Api-Key") != self.api_key:
            self.received.append(Received(401, None, None, (), (), ()))
            return web.Response(status=401, text="bad key")
        raw = await request.read()
        try:
            doc = etree.fromstring(raw, parser=etree.XMLParser(resolve_entities=False, no_network=True))
        except etree.XMLSyntaxError as exc:
            return self._refuse(None, "9001", f"报文结构校验失败：{exc}", ())
        sn = doc.findtext("Header/sn")
        records = doc.findall("Body/record")
        ids = tuple(r.get("localId", "") for r in records)
        if len(records) > self.max_records:
            self.received.append(Received(413, sn, None, ids, (), ()))
            return web.Response(status=413, text="too large")
        if not schema().validate(doc):
            return self._refuse(sn, "9001", f"报文结构校验失败：{schema().error_log.last_error}", ids)
        header_problem = self._header_problem(doc, records)
        if header_problem:
            return self._refuse(sn, "9002", header_problem, ids)
        if sn in self._answers:  # idempotent: the stored answer of the first
            self.received.append(Received(200, sn, "0000", ids, (), ()))
            return web.Response(body=self._answers[sn], content_type="application/xml", charset="utf-8")
        if self._busy_next > 0:
            self._busy_next -= 1
            return self._refuse(sn, "9003", "系统繁忙", ids)
        answer = self._process(doc, records)
        self._answers[str(sn)] = answer
        fields = tuple({f.tag: f.text or "" for f in r.find("fields")} for r in records)  # type: ignore[union-attr]
        self.received.append(Received(200, sn, "0000", ids, fields, tuple(r.get("op", "") for r in records)))
        if self.answer_lost():
            return web.Response(status=502, text="injected: answer lost")
        return web.Response(body=answer, content_type="application/xml", charset="utf-8")

    @staticmethod
    def _header_problem(doc: etree._Element, records: list[etree._Element]) -> str | None:
        flow, item = doc.findtext("Header/flow"), doc.findtext("Header/item")
        if flow != f"SGS_{item}":
            return "报文头错误：flow与item不一致"
        if doc.findtext("Header/recordCount") != str(len(records)):
            return "报文头错误：recordCount不符"
        if any(not r.find("fields")[0].tag.startswith(f"{item}_") for r in records):  # type: ignore[index]
            return "报文头错误：记录类型与item不一致"
        return None

    def _process(self, doc: etree._Element, records: list[etree._Element]) -> bytes:
        root, body = self._response(doc, "0000", f"处理完成：共{len(records)}条")
        for record in records:
            local_id = record.get("localId", "")
            result = etree.SubElement(body, "result", seq=record.get("seq", "1"), localId=local_id)
            found = self.faults.rejected.get(local_id)
            if found is None:
                self.stored[local_id] = self.stored.get(local_id, 0) + 1
                self._serial += 1
                for tag, text in (("status", "accepted"), ("code", "0000"), ("message", "入库成功"),
                                  ("platformId", f"PZJ{self._serial:012d}")):
                    _el(result, tag, text)
            else:
                code, message, field = found
                for tag, text in (("status", "rejected"), ("code", code), ("message", message)):
                    _el(result, tag, text)
                if field:
                    _el(result, "field", field)
        return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))

    def _refuse(self, sn: str | None, code: str, message: str, ids: tuple[str, ...]) -> web.Response:
        root, _ = self._response(None, code, message, sn)
        self.received.append(Received(200, sn, code, ids, (), ()))
        return web.Response(body=etree.tostring(root, xml_declaration=True, encoding="UTF-8"),
                            content_type="application/xml", charset="utf-8")

    def _response(self, doc: etree._Element | None, code: str, message: str,
                  sn: str | None = None) -> tuple[etree._Element, etree._Element]:
        root = etree.Element("ExchangeMessage", version="2.0")
        head = etree.SubElement(root, "Header")
        item = (doc.findtext("Header/item") if doc is not None else None) or "CF"
        count = len(doc.findall("Body/record")) if doc is not None and code == "0000" else 0
        ref = sn if doc is None else doc.findtext("Header/sn")
        for tag, text in (("sender", "XYPT-ZJ"), ("receiver", "SGW-ZJ"), ("flow", f"SGS_{item}"), ("item", item),
                          ("sn", f"XYPTZJ-R-{time.time_ns()}"), ("refSn", ref or ""), ("securityType", "none"),
                          ("sendTime", time.strftime("%Y-%m-%d %H:%M:%S")), ("recordCount", str(count)),
                          ("resultCode", code), ("resultMessage", message)):
            _el(head, tag, text)
        return root, etree.SubElement(root, "Body")
