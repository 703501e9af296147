"""The SOAP poll connector against the peer: envelopes, the sample trees, cursor, store outages, lease."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from connectors.base import ConnectorContext, MemoryState, PublishReceipt
from connectors.codecs import decode
from connectors.soap.poll import SoapPollConnector
from connectors.soap.window import BEIJING
from gateway.envelope import Envelope
from gateway.errors import ConfigError, PermanentError, StoreUnavailable
from mapping.catalog import load_catalog
from tests.conftest import MAPPINGS, SAMPLES
from tests.peers.soap_server import PASSWORD, USERNAME, SoapPeer, contract_wsdl, generate, records_in

SOAP = SAMPLES / "ministry-soap"
NOW = datetime(2025, 6, 4, 0, 0, tzinfo=BEIJING)
INSPECTIONS = [{"name": "QueryInspections", "variant": "inspection"}]


def options_for(peer: SoapPeer, **overrides: Any) -> dict[str, Any]:
    return {"wsdl": peer.wsdl_url, "username": USERNAME, "password": PASSWORD, "operations": INSPECTIONS,
            "page_size": 3, "start_time": "2025-06-03T00:00:00", "max_calls_per_min": 60000,
            "retry_backoff_s": 0.01, "max_backoff_s": 0.02, "timeout_s": 10, **overrides}


def connector(peer: SoapPeer, state: MemoryState | None = None, lease: Any = None,
              **overrides: Any) -> SoapPollConnector:
    options = options_for(peer, **overrides)
    context = ConnectorContext(state=state or MemoryState(), **({"lease": lease} if lease else {}))
    return SoapPollConnector("ministry", SoapPollConnector.Config.model_validate(options), context, clock=lambda: NOW)


class Collect:
    def __init__(self, fail_times: int = 0) -> None:
        self.envelopes: list[Envelope] = []
        self.fail_times = fail_times
        self.attempts = 0

    async def __call__(self, envelope: Envelope) -> PublishReceipt:
        self.attempts += 1
        if self.fail_times:
            self.fail_times -= 1
            raise StoreUnavailable("database is down")
        self.envelopes.append(envelope)
        return PublishReceipt(envelope.envelope_id, accepted=0, rejected=0, duplicate=0)


async def one_cycle(c: SoapPollConnector, publish: Collect) -> None:
    task = asyncio.create_task(c.run(publish))
    try:
        await asyncio.wait_for(c.caught_up.wait(), timeout=20)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_the_sample_pages_come_out_as_the_codec_decodes_them() -> None:
    page1 = (SOAP / "query-inspections-response-page1.xml").read_bytes()
    page2 = (SOAP / "query-inspections-response-page2-empty.xml").read_bytes()
    async with SoapPeer(canned={("QueryInspections", 1): page1, ("QueryInspections", 2): page2}) as peer:
        publish = Collect()
        await one_cycle(connector(peer), publish)
    [envelope] = publish.envelopes  # the empty page 2 ends the window and is not published
    assert envelope.payload == decode("soap", page1)
    assert envelope.raw == page1
    assert envelope.meta == {"variant": "inspection", "operation": "QueryInspections",
                             "window_start": "20250603000000", "window_end": "20250604000000", "page": 1,
                             "location": "QueryInspections 20250603000000-20250604000000 p1"}
    assert [(c.page_no, c.page_size) for c in peer.calls] == [(1, 3), (2, 3)]
    mapping = load_catalog(MAPPINGS)["ministry-soap.inspection"]
    mapped = list(mapping.map(envelope.payload, envelope.meta))
    assert [m.record["source_record_id"] for m in mapped] == [
        "YJJC2025330110000412", "YJJC2025330110000415", "YJJC2025330110000388"]


async def test_the_penalty_sample_is_a_short_last_page() -> None:
    sample = (SOAP / "query-penalties-response-page1.xml").read_bytes()
    async with SoapPeer(canned={("QueryPenalties", 1): sample}) as peer:
        publish = Collect()
        await one_cycle(connector(peer, operations=[{"name": "QueryPenalties", "variant": "penalty"}],
                                  page_size=50), publish)
    assert [e.payload for e in publish.envelopes] == [decode("soap", sample)]
    assert [c.page_no for c in peer.calls] == [1]  # 3 records < 50: no second call


async def test_a_store_outage_retries_the_page_and_holds_the_cursor_until_written() -> None:
    records = generate("QueryInspections", 2, datetime(2025, 6, 3, 8, 0))
    state = MemoryState()
    async with SoapPeer(records={"QueryInspections": records}) as peer:
        publish = Collect(fail_times=2)
        c = connector(peer, state)
        saved_while_failing: list[Any] = []
        original = publish.__call__

        async def watching(envelope: Envelope) -> PublishReceipt:
            saved_while_failing.append(state.values.get("cursor:QueryInspections"))
            return await original(envelope)

        await one_cycle(c, watching)  # type: ignore[arg-type]
    assert saved_while_failing == [None, None, None]  # no cursor while the page was not written
    assert publish.attempts == 3 and len(publish.envelopes) == 1
    assert len(peer.calls) == 1  # the page is published again, not fetched again
    assert [r["JCBH"] for r in records_in(publish.envelopes[0].payload)] == [r["JCBH"] for r in records]
    assert state.values["cursor:QueryInspections"] == "2025-06-04T00:00:00+08:00"


async def test_an_empty_window_moves_the_cursor_without_an_envelope() -> None:
    state = MemoryState()
    async with SoapPeer() as peer:
        publish = Collect()
        await one_cycle(connector(peer, state), publish)
    assert publish.envelopes == [] and len(peer.calls) == 1
    assert state.values == {"cursor:QueryInspections": "2025-06-04T00:00:00+08:00"}


class Lease:
    def __init__(self, acquire: bool = True, renewals: int = 1000) -> None:
        self.acquire_answer, self.renewals = acquire, renewals
        self.log: list[str] = []

    async def acquire(self) -> bool:
        self.log.append("acquire")
        return self.acquire_answer

    async def renew(self) -> bool:
        self.log.append("renew")
        self.renewals -= 1
        return self.renewals >= 0

    async def release(self) -> None:
        self.log.append("release")


async def test_without_the_lease_nothing_is_polled() -> None:
    lease = Lease(acquire=False)
    async with SoapPeer() as peer:
        c = connector(peer, lease=lease, poll_interval_s=0.01)
        task = asyncio.create_task(c.run(Collect()))
        for _ in range(200):
            if lease.log.count("acquire") >= 3:
                break
            await asyncio.sleep(0.01)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert lease.log.count("acquire") >= 3 and peer.calls == []
    assert "release" not in lease.log  # never held


async def test_a_lost_lease_stops_the_cycle_and_the_lease_is_released_on_stop() -> None:
    records = generate("QueryInspections", 7, datetime(2025, 6, 3, 8, 0))
    lease = Lease(renewals=1)  # renewed before page 1, lost before page 2
    state = MemoryState()
    async with SoapPeer(records={"QueryInspections": records}) as peer:
        publish = Collect()
        c = connector(peer, state, lease=lease, poll_interval_s=3600)
        task = asyncio.create_task(c.run(publish))
        for _ in range(200):
            if lease.log.count("renew") >= 2:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert [c.page_no for c in peer.calls] == [1]
    assert len(publish.envelopes) == 1 and state.values == {}  # the window was not finished
    assert not c.caught_up.is_set()
    assert lease.log[0] == "acquire"


async def test_the_lease_held_is_released_when_the_connector_stops() -> None:
    lease = Lease()
    async with SoapPeer() as peer:
        await one_cycle(connector(peer, lease=lease), Collect())
    assert lease.log[-1] == "release"


async def test_an_operation_missing_from_the_wsdl_is_a_config_error() -> None:
    async with SoapPeer() as peer:
        c = connector(peer, operations=[{"name": "QueryLicences", "variant": "licence"}])
        with pytest.raises(ConfigError, match="QueryLicences"):
            await asyncio.wait_for(c.run(Collect()), timeout=10)
    assert peer.calls == []


async def test_a_local_wsdl_with_an_endpoint_override(tmp_path: Path) -> None:
    wsdl = tmp_path / "service.wsdl"
    wsdl.write_text(contract_wsdl(), encoding="utf-8")  # names https://aqzf.yjgl.example/...
    records = generate("QueryInspections", 1, datetime(2025, 6, 3, 8, 0))
    async with SoapPeer(records={"QueryInspections": records}) as peer:
        publish = Collect()
        await one_cycle(connector(peer, wsdl=str(wsdl), endpoint=peer.url), publish)
    assert peer.wsdl_gets == 0 and len(peer.calls) == 1 and len(publish.envelopes) == 1


async def test_the_password_stays_out_of_the_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with SoapPeer(password="another") as peer:
        c = connector(peer)
        with pytest.raises(PermanentError, match="1001"):
            await asyncio.wait_for(c.run(Collect()), timeout=10)
    assert PASSWORD not in caplog.text
    assert peer.calls and peer.calls[0].status == 500


class HeldUntilNextPageAsked(Collect):
    """Publishes page 1 only once the peer has been asked for page 2: it never returns unless the
    connector fetches the next page while it publishes."""

    def __init__(self, peer: SoapPeer) -> None:
        super().__init__()
        self.peer = peer
        self.cursor_at_publish: list[Any] = []
        self.state: MemoryState | None = None

    async def __call__(self, envelope: Envelope) -> PublishReceipt:
        if envelope.meta["page"] == 1:
            async with asyncio.timeout(5):
                while not any(c.page_no == 2 for c in self.peer.calls_of("QueryInspections")):
                    await asyncio.sleep(0.01)
        assert self.state is not None
        self.cursor_at_publish.append(await self.state.load("cursor:QueryInspections"))
        return await super().__call__(envelope)


async def test_the_next_page_is_fetched_while_a_page_is_published_and_the_cursor_waits_for_both() -> None:
    records = generate("QueryInspections", 7, datetime(2025, 6, 3, 8, 0))  # pages of 3: 3, 3, 1
    async with SoapPeer(records={"QueryInspections": records}) as peer:
        state = MemoryState()
        publish = HeldUntilNextPageAsked(peer)
        publish.state = state
        await one_cycle(connector(peer, state=state, window_s=86400), publish)
        calls = peer.calls_of("QueryInspections")
    assert [len(records_in(e.payload)) for e in publish.envelopes] == [3, 3, 1]
    assert [c.page_no for c in calls] == [1, 2, 3]  # no page asked for beyond the last (not full) one
    assert publish.cursor_at_publish == [None, None, None]  # saved only once every page was written
    assert await state.load("cursor:QueryInspections") is not None
