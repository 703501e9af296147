"""A test peer for the 应急管理 ministry SOAP service (contract: shared/sources/ministry-soap/).

A real HTTP server on 127.0.0.1 (aiohttp.web) that serves the contract's WSDL at ``?wsdl`` (its
soap:address rewritten to itself) and answers QueryInspections / QueryPenalties from in-memory
records: filtered by the GXSJ window ``[startTime, endTime)``, ordered by GXSJ then key, paged.
Every request must carry the WS-Security UsernameToken (PasswordText); a wrong one gets the
contract's Fault 1001 bytes. Fault injection: ``fail(kind, times)`` answers the next calls with a
Fault (1001, 1002, 2001, 3001, 5000), a proxy page (502, 503) or a 200 body that never ends
("endless", for response size limits) or that trickles in a few bytes at a time ("drip", for the
answer deadline); ``gzip_answers`` compresses every answer; ``delay_s`` slows every answer;
``after_call`` runs after each answer (a test changes the records between two pages: the source
keeps no snapshot).
"""

from __future__ import annotations

import asyncio
import copy
import re
from bisect import bisect_left
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

from aiohttp import web
from lxml import etree

from connectors.codecs import decode

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "config" / "samples" / "ministry-soap"
WSDL_CANDIDATES = (SAMPLES / "service.wsdl", ROOT.parent / "shared" / "sources" / "ministry-soap" / "service.wsdl")
SERVICE_PATH = "/aqzf/services/SafetyEnforcementService"
TNS = "http://ws.aqzf.yjgl.example/"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
PASSWORD_TEXT = "#PasswordText"
USERNAME = "ZJ330000_SGW"
PASSWORD = "Sgw#2025demo"
KEYS = {"QueryInspections": "JCBH", "QueryPenalties": "CFBH"}
SOURCE_FORMAT = "%Y%m%d%H%M%S"
BEIJING = ZoneInfo("Asia/Shanghai")
MAX_WINDOW = timedelta(days=7)
DATETIME_FIELDS = ("JCSJ", "TBSJ", "GXSJ")
DATE_FIELDS = ("LASJ", "CFJDRQ", "JASJ")
FAULTS = {  # errorCode -> (faultcode, errorMsg), as the contract's README lists them
    "1002": ("soap:Client", "账号已锁定"),
    "2001": ("soap:Client", "参数错误"),
    "3001": ("soap:Server", "请求过于频繁，请稍后重试"),
    "5000": ("soap:Server", "系统内部错误"),
}
ENDLESS_CHUNK = b"<record><JCBH>" + b"X" * 8000 + b"</JCBH></record>"
PROXY_PAGE = b"<html><head><title>%d</title></head><body><h1>%d Service Unavailable</h1></body></html>"


def contract_wsdl() -> str:
    for path in WSDL_CANDIDATES:
        if path.is_file():
            return path.read_text(encoding="utf-8")
    raise FileNotFoundError(f"service.wsdl of the ministry-soap contract: none of {WSDL_CANDIDATES}")


def fault_body(code: str, text: str | None = None) -> bytes:
    if code == "1001":
        return (SAMPLES / "fault-invalid-credentials.xml").read_bytes()
    faultcode, message = FAULTS[code]
    message = f"{message}：{text}" if text else message
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">'
        f"<soap:Body><soap:Fault><faultcode>{faultcode}</faultcode><faultstring>{escape(message)}</faultstring>"
        f'<detail><ns2:ServiceFault xmlns:ns2="{TNS}"><errorCode>{code}</errorCode>'
        f"<errorMsg>{escape(message)}</errorMsg></ns2:ServiceFault></detail></soap:Fault></soap:Body></soap:Envelope>"
    ).encode()


def sample_records(name: str) -> list[dict[str, str]]:
    records = decode("soap", (SAMPLES / name).read_bytes())["return"]["records"]["record"]
    return records if isinstance(records, list) else [records]


def generate(operation: str, count: int, first_gxsj: datetime, step_s: float = 1.0) -> list[dict[str, str]]:
    """``count`` distinct records cloned from the contract's samples, GXSJ ``step_s`` apart (Beijing time)."""
    if first_gxsj.tzinfo is not None:
        first_gxsj = first_gxsj.astimezone(BEIJING).replace(tzinfo=None)
    samples = sample_records("query-inspections-response-page1.xml" if operation == "QueryInspections"
                             else "query-penalties-response-page1.xml")
    key = KEYS[operation]
    out = []
    for i in range(count):
        record = copy.deepcopy(samples[i % len(samples)])
        record[key] = f"{record[key]}-{i:07d}"
        gxsj = first_gxsj + timedelta(seconds=i * step_s)
        shift(record, gxsj - datetime.strptime(record["GXSJ"], SOURCE_FORMAT))
        out.append(record)
    return out


def shift(record: dict[str, str], delta: timedelta) -> None:
    """Move every time of a record by ``delta``, keeping their order (the validator checks it)."""
    for name in DATETIME_FIELDS:
        if record.get(name):
            record[name] = (datetime.strptime(record[name], SOURCE_FORMAT) + delta).strftime(SOURCE_FORMAT)
    for name in DATE_FIELDS:
        if record.get(name):
            record[name] = (datetime.strptime(record[name], "%Y%m%d") + delta).strftime("%Y%m%d")


def record_xml(record: dict[str, str]) -> str:
    return "<record>" + "".join(f"<{k}>{escape(v)}</{k}>" for k, v in record.items()) + "</record>"


@dataclass(frozen=True, slots=True)
class PeerCall:
    operation: str
    start: str
    end: str
    page_no: int
    page_size: int
    status: int


@dataclass
class Query:
    operation: str
    params: dict[str, str]
    username: str | None
    password: str | None
    password_type: str | None


@dataclass
class SoapPeer:
    """``async with SoapPeer(records={...}) as peer``: ``peer.wsdl_url``, ``peer.calls``, ``peer.fail(...)``."""

    records: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    username: str = USERNAME
    password: str = PASSWORD
    delay_s: float = 0.0
    canned: dict[tuple[str, int], bytes] = field(default_factory=dict)
    """(operation, pageNo) -> a whole answer sent as is (the contract's sample files)."""
    after_call: Callable[[PeerCall], None] | None = None
    """Runs after each operation call is answered (change ``records`` here: replace a list, see ``_index``)."""
    calls: list[PeerCall] = field(default_factory=list)
    endless_bytes_sent: int = 0
    gzip_answers: bool = False
    wsdl_gets: int = 0
    wsdl_padding_bytes: int = 0
    """An XML comment of this many bytes appended to the WSDL (a runaway document)."""
    max_in_flight: int = 0
    _in_flight: int = 0
    _faults: deque[str] = field(default_factory=deque)
    _runner: web.AppRunner | None = None
    _indexes: dict[str, tuple[tuple[int, int], tuple[list[dict[str, str]], list[str], list[str]]]] = field(
        default_factory=dict)
    url: str = ""

    @property
    def wsdl_url(self) -> str:
        return f"{self.url}?wsdl"

    def fail(self, kind: str, times: int = 1) -> None:
        """The next ``times`` operation calls answer ``kind``: an errorCode, or "502"/"503" proxy pages."""
        self._faults.extend([kind] * times)

    def calls_of(self, operation: str) -> list[PeerCall]:
        return [c for c in self.calls if c.operation == operation]

    async def __aenter__(self) -> SoapPeer:
        app = web.Application()
        app.router.add_get(SERVICE_PATH, self._wsdl)
        app.router.add_post(SERVICE_PATH, self._operation)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}{SERVICE_PATH}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _wsdl(self, request: web.Request) -> web.Response:
        if "wsdl" not in request.query:
            return web.Response(status=404)
        self.wsdl_gets += 1
        text = re.sub(r'(<soap:address location=")[^"]*(")', rf"\g<1>{self.url}\g<2>", contract_wsdl())
        if self.wsdl_padding_bytes:
            text += f"<!--{'x' * self.wsdl_padding_bytes}-->"
        return web.Response(body=text.encode(), content_type="text/xml", charset="utf-8")

    async def _operation(self, request: web.Request) -> web.StreamResponse:
        self._in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self._in_flight)
        try:
            if self.delay_s:
                await asyncio.sleep(self.delay_s)
            query = parse_query(await request.read())
            status, body, content_type = self._answer(query, request.headers.get("SOAPAction", ""))
            params = query.params
            call = PeerCall(query.operation, params.get("startTime", ""), params.get("endTime", ""),
                            _int(params.get("pageNo")), _int(params.get("pageSize")), status)
            self.calls.append(call)
            if self.after_call is not None:
                self.after_call(call)
            if content_type in ("endless", "drip"):
                return await self._endless(request, drip=content_type == "drip")
            answer = web.Response(status=status, body=body, content_type=content_type, charset="utf-8")
            if self.gzip_answers:
                answer.enable_compression(web.ContentCoding.gzip)
            return answer
        finally:
            self._in_flight -= 1

    async def _endless(self, request: web.Request, *, drip: bool = False) -> web.StreamResponse:
        """A 200 page whose records never end, streamed until the client hangs up (``drip``: a few
        bytes every 20 ms, so that no single wait for more of it is long)."""
        response = web.StreamResponse(status=200, headers={"Content-Type": "text/xml;charset=UTF-8"})
        await response.prepare(request)
        head = ('<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>'
                f'<ns2:QueryInspectionsResponse xmlns:ns2="{TNS}">')
        try:
            await response.write(head.encode() + b"<return><records>")
            while True:
                chunk = b"<!---->" if drip else ENDLESS_CHUNK
                await response.write(chunk)
                self.endless_bytes_sent += len(chunk)
                if drip:
                    await asyncio.sleep(0.02)
        except (ConnectionError, RuntimeError):  # the client closed the connection
            return response

    def _answer(self, query: Query, soap_action: str) -> tuple[int, bytes, str]:
        if (query.username, query.password, query.password_type) != (self.username, self.password, PASSWORD_TEXT):
            return 500, fault_body("1001"), "text/xml"
        if self._faults:
            kind = self._faults.popleft()
            if kind in ("502", "503"):
                return int(kind), PROXY_PAGE % (int(kind), int(kind)), "text/html"
            if kind in ("endless", "drip"):
                return 200, b"", kind
            return 500, fault_body(kind), "text/xml"
        if query.operation not in KEYS or soap_action.strip('"') != f"urn:{query.operation}":
            return 500, fault_body("2001", f"unknown operation or SOAPAction {soap_action}"), "text/xml"
        problem, window = check_params(query.params)
        if problem:
            return 500, fault_body("2001", problem), "text/xml"
        if (canned := self.canned.get((query.operation, window[2]))) is not None:
            return 200, canned, "text/xml"
        return 200, self._page(query.operation, *window), "text/xml"

    def warm(self) -> None:
        """Build the page indexes now (benchmarks: keep the one-off cost out of the timing)."""
        for operation in self.records:
            self._index(operation)

    def _index(self, operation: str) -> tuple[list[dict[str, str]], list[str], list[str]]:
        """Records ordered as the source pages them (GXSJ, then key), their GXSJ and their XML.

        Rebuilt when an operation's list grows or is replaced: append records, do not edit them in place.
        """
        records = self.records.get(operation, [])
        stamp = (id(records), len(records))
        cached = self._indexes.get(operation)
        if cached is None or cached[0] != stamp:
            key = KEYS[operation]
            ordered = sorted(records, key=lambda r: (r["GXSJ"], r[key]))
            cached = (stamp, (ordered, [r["GXSJ"] for r in ordered], [record_xml(r) for r in ordered]))
            self._indexes[operation] = cached
        return cached[1]

    def _page(self, operation: str, start: str, end: str, page_no: int, page_size: int) -> bytes:
        _, times, xml = self._index(operation)
        first, last = bisect_left(times, start), bisect_left(times, end)
        low = first + (page_no - 1) * page_size
        page = range(low, min(low + page_size, last))
        matching = range(first, last)
        records = "".join(xml[i] for i in page)
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">'
            f'<soap:Body><ns2:{operation}Response xmlns:ns2="{TNS}"><return><returnCode>0000</returnCode>'
            f"<returnMsg>成功</returnMsg><totalCount>{len(matching)}</totalCount><pageNo>{page_no}</pageNo>"
            f"<pageSize>{page_size}</pageSize><records>{records}</records></return></ns2:{operation}Response>"
            "</soap:Body></soap:Envelope>"
        ).encode()


def _int(text: str | None) -> int:
    try:
        return int(text or "")
    except ValueError:
        return 0


def parse_query(body: bytes) -> Query:
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    root = etree.fromstring(body, parser)
    token = root.find(f".//{{{WSSE}}}UsernameToken")
    username = password = password_type = None
    if token is not None:
        username = token.findtext(f"{{{WSSE}}}Username")
        password_node = token.find(f"{{{WSSE}}}Password")
        if password_node is not None:
            password = password_node.text
            password_type = "#" + (password_node.get("Type") or "").rpartition("#")[2]
    body_node = next((child for child in root if etree.QName(child).localname == "Body"), None)
    request = body_node[0] if body_node is not None and len(body_node) else None
    operation = etree.QName(request).localname if request is not None else ""
    params = {etree.QName(c).localname: (c.text or "") for c in request} if request is not None else {}
    return Query(operation, params, username, password, password_type)


def check_params(params: dict[str, str]) -> tuple[str | None, tuple[str, str, int, int]]:
    start, end = params.get("startTime", ""), params.get("endTime", "")
    page_no, page_size = _int(params.get("pageNo")), _int(params.get("pageSize"))
    try:
        start_at, end_at = datetime.strptime(start, SOURCE_FORMAT), datetime.strptime(end, SOURCE_FORMAT)
    except ValueError:
        return f"startTime/endTime must be yyyyMMddHHmmss: {start!r} {end!r}", (start, end, 0, 0)
    if end_at <= start_at or end_at - start_at > MAX_WINDOW:
        return f"window {start}-{end} is empty or over 7 days", (start, end, 0, 0)
    if not 1 <= page_size <= 200 or page_no < 1:
        return f"pageNo {page_no} / pageSize {page_size} out of range", (start, end, 0, 0)
    return None, (start, end, page_no, page_size)


def records_in(tree: Any) -> list[dict[str, Any]]:
    """The records of a decoded page (for tests): ``return.records.record`` as a list."""
    found = tree["return"]["records"]
    found = found.get("record", []) if isinstance(found, dict) else []
    return found if isinstance(found, list) else [found]
