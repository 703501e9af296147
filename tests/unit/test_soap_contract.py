"""The ministry SOAP contract's less common but conformant answers, through the connector and mappings.

Contract: shared/sources/ministry-soap/ (README.md, service.wsdl). Each test names the clause it holds.
"""

from __future__ import annotations

import asyncio
import re
import time
from datetime import datetime
from typing import Any

import pytest

from connectors.base import MemoryState
from connectors.codecs import DEFAULT_LIMITS, decode
from connectors.soap.client import SoapClient
from connectors.soap.faults import decode_answer
from connectors.soap.poll import SoapPollConnector
from connectors.soap.window import BEIJING, Window
from gateway.errors import PayloadError, PermanentError, SourceUnavailable
from gateway.ingest import Ingestor
from mapping.catalog import load_catalog
from tests.conftest import MAPPINGS, SAMPLES
from tests.peers.soap_server import PeerCall, SoapPeer, generate, records_in
from tests.unit.test_soap_connector import Collect, connector, one_cycle, options_for

WINDOW = Window(start=datetime(2025, 6, 3, tzinfo=BEIJING), end=datetime(2025, 6, 4, tzinfo=BEIJING))

SOAP = SAMPLES / "ministry-soap"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
CATALOG = load_catalog(MAPPINGS)


def checked(kind: str, payload: Any) -> list[tuple[dict[str, Any], list[tuple[str, str]]]]:
    """Each record of a decoded page as ingest completes it, with its (code, field) errors."""
    mapping = CATALOG[f"ministry-soap.{kind}"]
    out = []
    for mapped in mapping.map(payload, {"connector": "ministry"}):
        record, findings = Ingestor().check_mapped(mapping, mapped, {"received_at": "2025-06-28T09:00:00+08:00"})
        out.append((record, [(f.code, f.field) for f in findings if f.severity == "error"]))
    return out


def with_elements(sample: str, replacements: dict[str, str]) -> bytes:
    """The sample page with each named element of every record replaced by the given XML."""
    text = (SOAP / sample).read_text(encoding="utf-8")
    declarations = f'xmlns:xsi="{XSI}" xmlns:xs="http://www.w3.org/2001/XMLSchema"'
    text = text.replace("<soap:Envelope ", f"<soap:Envelope {declarations} ")
    for name, xml in replacements.items():
        text = re.sub(rf"<{name}>[^<]*</{name}>", xml, text)
    return text.encode()


# README "Crosswalk": QYDZ, HYLB, JCNR, YBYHS, ZDYHS, SSJHBH, TBR are minOccurs="0"; a JAX-WS service
# may write an unset one as xsi:nil, and any element may carry xsi:type. Both must read as the schema
# value (nil: absent), not as an attribute dict the mapping refuses.
async def test_xsi_nil_and_xsi_type_on_record_elements_read_as_absent_and_as_text() -> None:
    page = with_elements("query-inspections-response-page1.xml", {
        "QYDZ": '<QYDZ xsi:nil="true"/>', "HYLB": '<HYLB xsi:nil="1"></HYLB>', "TBR": '<TBR xsi:nil="true"/>',
        "YBYHS": '<YBYHS xsi:nil="true"/>', "JCNR": '<JCNR xsi:type="xs:string">现场检查</JCNR>'})
    async with SoapPeer(canned={("QueryInspections", 1): page}) as peer:
        publish = Collect()
        await one_cycle(connector(peer, page_size=50), publish)
    [envelope] = publish.envelopes
    assert envelope.raw == page
    results = checked("inspection", envelope.payload)
    assert [errors for _, errors in results] == [[], [], []]
    assert [r.get("supervision_content") for r, _ in results] == ["现场检查", "现场检查", None]
    for record, _ in results:
        assert {"operating_address", "company_category", "submitted_by"}.isdisjoint(record)
        assert "general_hazards" not in record.get("ext", {})
        assert record["ext"]["major_hazards"] in (0, 1)


async def test_a_nil_records_element_is_an_empty_last_page() -> None:
    empty = (SOAP / "query-inspections-response-page2-empty.xml").read_text(encoding="utf-8")
    page = empty.replace("<records/>", f'<records xmlns:xsi="{XSI}" xsi:nil="true"/>').encode()
    state = MemoryState()
    async with SoapPeer(canned={("QueryInspections", 1): page}) as peer:
        publish = Collect()
        await one_cycle(connector(peer, state), publish)
    assert publish.envelopes == [] and [c.page_no for c in peer.calls] == [1]
    assert state.values == {"cursor:QueryInspections": "2025-06-04T00:00:00+08:00"}


# README "Crosswalk — QueryPenalties": DSRLX decides nature and id type (1 -> USCC, 2 -> 居民身份证);
# TYSHXYDM is only required for DSRLX=1, SFZH for DSRLX=2. A person (个体经营者) may still carry a
# TYSHXYDM: the id number must then be the SFZH, matching id type 111.
@pytest.mark.parametrize(("dsrlx", "expected"), [("2", ("1", "111", "330125197501305170")),
                                                  ("1", ("2", "001", "91330110MA27C4LT4W"))])
def test_the_counterparty_id_follows_dsrlx_when_both_numbers_are_given(dsrlx: str,
                                                                        expected: tuple[str, str, str]) -> None:
    page = decode("soap", (SOAP / "query-penalties-response-page1.xml").read_bytes())
    person = records_in(page)[1]
    person.update(DSRLX=dsrlx, TYSHXYDM="91330110MA27C4LT4W", SFZH="330125197501305170")
    [(record, errors)] = checked("penalty", {"return": {"records": {"record": person}}})
    assert errors == []
    assert (record["counterparty_nature"], record["counterparty_id_type"], record["counterparty_id_no"]) == expected


# README "Errors": the service is SOAP 1.1, but a front proxy or a later release answering SOAP 1.2
# names the caller's fault Sender (1.1: Client); without a ServiceFault code it is still permanent.
@pytest.mark.parametrize(("value", "kind"), [("env:Sender", PermanentError), ("env:Receiver", SourceUnavailable)])
def test_soap12_fault_codes_without_detail(value: str, kind: type[Exception]) -> None:
    data = (
        '<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"><env:Body><env:Fault>'
        f"<env:Code><env:Value>{value}</env:Value></env:Code>"
        '<env:Reason><env:Text xml:lang="en">refused</env:Text></env:Reason></env:Fault></env:Body></env:Envelope>'
    ).encode()
    with pytest.raises(kind):
        decode_answer(500, data, where="p1", limits=DEFAULT_LIMITS, rate_limited_backoff_s=60)


# Task brief / codecs: a response is refused past max_response_bytes *while it is read*, so a
# runaway answer cannot fill the gateway's memory before the size check.
async def test_a_response_past_max_response_bytes_is_refused_while_it_streams() -> None:
    async with SoapPeer() as peer:
        peer.fail("endless")
        c = connector(peer, max_response_bytes=64 * 1024)
        with pytest.raises(PayloadError) as caught:
            await asyncio.wait_for(c.run(Collect()), timeout=20)
        sent = peer.endless_bytes_sent
    assert caught.value.code == "PAYLOAD_TOO_LARGE"
    assert sent < 64 * 1024 * 1024  # the client hung up long before; a full read never ends


async def test_a_wsdl_past_max_response_bytes_is_refused_and_a_normal_one_loads() -> None:
    # The source serves its WSDL too: a runaway document is refused like a runaway answer.
    async with SoapPeer() as peer:
        peer.wsdl_padding_bytes = 2 * 1024 * 1024
        config = SoapPollConnector.Config.model_validate(options_for(peer, max_response_bytes=256 * 1024))
        with pytest.raises(PayloadError) as caught:
            await asyncio.to_thread(SoapClient(config).load)
        peer.wsdl_padding_bytes = 100 * 1024  # under the limit: loads
        client = SoapClient(config)
        await asyncio.to_thread(client.load)
        await asyncio.to_thread(client.close)
    assert caught.value.code == "PAYLOAD_TOO_LARGE"


async def test_an_answer_that_trickles_in_is_given_up_at_the_answer_deadline() -> None:
    # Each wait for more is short (no per-read timeout fires), the whole never ends: the call is
    # given up as transient once answer_timeout_s has passed, and the connection dropped.
    async with SoapPeer() as peer:
        client = SoapClient(SoapPollConnector.Config.model_validate(options_for(peer, answer_timeout_s=0.5)))
        await asyncio.to_thread(client.load)
        peer.fail("drip")
        started = time.monotonic()
        with pytest.raises(SourceUnavailable, match="not complete in time"):
            await asyncio.to_thread(client.query, "QueryInspections", WINDOW, 1, 3)
        took = time.monotonic() - started
        await asyncio.to_thread(client.close)
    assert 0.5 <= took < 3


async def test_a_gzip_answer_is_read_unpacked() -> None:
    records = generate("QueryInspections", 3, datetime(2025, 6, 3, 8, 0))
    async with SoapPeer(records={"QueryInspections": records}) as peer:
        peer.gzip_answers = True
        publish = Collect()
        await one_cycle(connector(peer, page_size=50), publish)
    assert [len(records_in(e.payload)) for e in publish.envelopes] == [3]


# README "Operations and paging": no snapshot across pages. A record updated while the window is
# paged leaves it (its GXSJ moves past endTime), every later record moves up one place, and the
# first record of the next page would be skipped for good. totalCount tells: re-read the window.
async def test_a_total_count_change_between_pages_re_reads_the_window() -> None:
    records = generate("QueryInspections", 7, datetime(2025, 6, 3, 8, 0))
    updated = dict(records[1], GXSJ="20250604000100", CZLX="U")  # now after the window's end

    def update_after_page_1(call: PeerCall) -> None:
        if call.page_no == 1 and len(peer.calls) == 1:
            peer.records["QueryInspections"] = [updated if r is records[1] else r for r in records]

    state = MemoryState()
    async with SoapPeer(records={"QueryInspections": records}) as peer:
        peer.after_call = update_after_page_1
        publish = Collect()
        await one_cycle(connector(peer, state), publish)
    read = {r["JCBH"] for e in publish.envelopes for r in records_in(e.payload)}
    assert read == {r["JCBH"] for r in records}  # nothing skipped (records[1] comes back in the next window)
    pages = [c.page_no for c in peer.calls]
    assert pages[:2] == [1, 2] and pages[2] == 1  # the shift was seen on page 2: the window starts again
    assert state.values == {"cursor:QueryInspections": "2025-06-04T00:00:00+08:00"}


async def test_a_window_whose_total_keeps_changing_is_read_a_bounded_number_of_times() -> None:
    records = generate("QueryInspections", 4, datetime(2025, 6, 3, 8, 0))
    earlier = generate("QueryInspections", 100, datetime(2025, 6, 3, 7, 0))
    late = iter(dict(r, JCBH=f"{r['JCBH']}-late") for r in earlier)

    def commit_one_more(call: PeerCall) -> None:
        # a late commit with an earlier GXSJ lands in the window after every call
        peer.records["QueryInspections"] = [*peer.records["QueryInspections"], next(late)]

    state = MemoryState()
    async with SoapPeer(records={"QueryInspections": records}) as peer:
        peer.after_call = commit_one_more
        publish = Collect()
        await one_cycle(connector(peer, state, page_size=3), publish)
    reads = sum(1 for c in peer.calls if c.page_no == 1)
    assert 2 <= reads <= 5
    assert state.values == {"cursor:QueryInspections": "2025-06-04T00:00:00+08:00"}  # it moves on, not spins
