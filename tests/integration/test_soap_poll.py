"""The SOAP poll connector against the ministry peer over real sockets, ending in the ex_* tables."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from connectors.base import ConnectorContext
from connectors.soap.poll import SoapPollConnector
from connectors.soap.window import BEIJING
from gateway.durable import SqlGatewayStore
from gateway.ingest import Ingestor
from gateway.publisher import Publisher
from gateway.runtime import Runtime
from gateway.stores.connector_state import SqlConnectorState
from gateway.stores.db import create_engine_for, init_schema
from gateway.supervise import supervise
from mapping.calendar import WorkingCalendar
from mapping.catalog import load_catalog
from tests.conftest import MAPPINGS
from tests.peers.soap_server import PASSWORD, USERNAME, SoapPeer, generate
from tests.servers import embedded_runtime

pytestmark = pytest.mark.integration

CONNECTOR = "ministry-soap"


def now() -> datetime:
    """Read per test: the runtime's clock is the real one, and a long suite runs for minutes."""
    return datetime.now(BEIJING).replace(microsecond=0)


def start() -> datetime:
    return now() - timedelta(days=2)


def options(peer: SoapPeer, **overrides: Any) -> dict[str, Any]:
    return {
        "wsdl": peer.wsdl_url, "username": USERNAME, "password": PASSWORD,
        "operations": [{"name": "QueryInspections", "variant": "inspection"},
                       {"name": "QueryPenalties", "variant": "penalty"}],
        "page_size": 3, "window_s": 86400, "overlap_s": 300, "start_time": start().isoformat(),
        "poll_interval_s": 3600, "max_calls_per_min": 60000, "timeout_s": 10, "retry_backoff_s": 0.01,
        "max_backoff_s": 0.05, **overrides,
    }


def make_runtime(tmp_path: Path, peer: SoapPeer, **overrides: Any) -> Runtime:
    return embedded_runtime(tmp_path, [{
        "id": CONNECTOR, "type": "soap_poll", "options": options(peer, **overrides),
        "mappings": {"inspection": "ministry-soap.inspection", "penalty": "ministry-soap.penalty"}}])


async def run_until_caught_up(runtime: Runtime) -> None:
    await runtime.start()
    try:
        connector = runtime.assembly.connectors[CONNECTOR]
        await asyncio.wait_for(connector.caught_up.wait(), timeout=30)
        await runtime.drain()
    finally:
        await runtime.stop()


def table_rows(tmp_path: Path, table: str) -> list[tuple[Any, ...]]:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'dc.sqlite'}")
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(f"SELECT * FROM {table} ORDER BY cd_id")).all()]
    finally:
        engine.dispose()


def peer_with(inspections: int, penalties: int) -> SoapPeer:
    first = start() + timedelta(hours=1)
    return SoapPeer(records={"QueryInspections": generate("QueryInspections", inspections, first, step_s=60),
                             "QueryPenalties": generate("QueryPenalties", penalties, first, step_s=60)})


async def test_pages_of_both_operations_reach_the_data_centre_tables(tmp_path: Path) -> None:
    async with peer_with(inspections=6, penalties=4) as peer:
        runtime = make_runtime(tmp_path, peer)
        await run_until_caught_up(runtime)
        inspections = peer.calls_of("QueryInspections")
        penalties = peer.calls_of("QueryPenalties")
    # 6 inspections in pages of 3: two full pages, then the empty page that ends the window.
    first_window = [c for c in inspections if c.start == inspections[0].start]
    assert [(c.page_no, c.status) for c in first_window] == [(1, 200), (2, 200), (3, 200)]
    assert [c.page_no for c in penalties if c.start == penalties[0].start] == [1, 2]  # 3 + a short page of 1
    totals = runtime.store.totals()
    assert totals["accepted"] + totals["rejected"] == 10
    assert totals["accepted"] >= 6
    assert len(table_rows(tmp_path, "ex_inspection")) + len(table_rows(tmp_path, "ex_penalty")) == totals["accepted"]
    assert len(table_rows(tmp_path, "ex_inspection")) > 0 and len(table_rows(tmp_path, "ex_penalty")) > 0


async def test_the_cursor_survives_a_restart_and_the_overlap_changes_no_rows(tmp_path: Path) -> None:
    began = now()
    async with peer_with(inspections=5, penalties=2) as peer:
        await run_until_caught_up(make_runtime(tmp_path, peer))
        rows_before = table_rows(tmp_path, "ex_inspection"), table_rows(tmp_path, "ex_penalty")
        calls_before = len(peer.calls)

        second = make_runtime(tmp_path, peer)
        cursor = await SqlConnectorState(second.engine, CONNECTOR).load("cursor:QueryInspections")
        await run_until_caught_up(second)
        resumed = peer.calls[calls_before:]
        rows_after = table_rows(tmp_path, "ex_inspection"), table_rows(tmp_path, "ex_penalty")

    stored = datetime.fromisoformat(cursor)
    assert stored >= began  # the end of the last fully read window
    restart = next(c for c in resumed if c.operation == "QueryInspections")
    assert restart.start == (stored - timedelta(seconds=300)).strftime("%Y%m%d%H%M%S")  # not start_time
    assert restart.start > (began - timedelta(days=1)).strftime("%Y%m%d%H%M%S")
    assert rows_after == rows_before


async def test_overlap_re_reads_are_dropped_as_duplicates(tmp_path: Path) -> None:
    # Records in the last minutes before now fall in the overlap of the next cycle.
    recent = now() - timedelta(seconds=120)
    records = generate("QueryInspections", 3, recent, step_s=10)
    async with SoapPeer(records={"QueryInspections": records}) as peer:
        opts = {"operations": [{"name": "QueryInspections", "variant": "inspection"}]}
        await run_until_caught_up(make_runtime(tmp_path, peer, **opts))
        rows_before = table_rows(tmp_path, "ex_inspection")
        second = make_runtime(tmp_path, peer, **opts)
        await run_until_caught_up(second)
    assert len(rows_before) >= 1
    assert second.store.totals()["duplicate"] == 3  # all three came back in the overlap window
    assert table_rows(tmp_path, "ex_inspection") == rows_before


def publisher_on(tmp_path: Path) -> tuple[Publisher, SqlGatewayStore, sa.Engine]:
    engine = create_engine_for(f"sqlite:///{tmp_path / 'gateway.sqlite'}")
    init_schema(engine)
    catalog = load_catalog(MAPPINGS)
    store = SqlGatewayStore(engine, WorkingCalendar())
    mappings = {CONNECTOR: {"inspection": catalog["ministry-soap.inspection"],
                            "penalty": catalog["ministry-soap.penalty"]}}
    return Publisher(ingestor=Ingestor(), mappings=mappings, store=store, routes=lambda kind: ()), store, engine


async def test_bad_credentials_stop_the_connector_after_one_call(tmp_path: Path,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    publisher, _, engine = publisher_on(tmp_path)
    async with peer_with(inspections=3, penalties=3) as peer:
        config = SoapPollConnector.Config.model_validate(options(peer, password="wrong-password"))
        connector = SoapPollConnector(CONNECTOR, config, ConnectorContext(state=SqlConnectorState(engine, CONNECTOR)))
        # supervise returns only when the plugin stops for good; a retry loop would time out here.
        await asyncio.wait_for(supervise(CONNECTOR, partial(connector.run, publisher)), timeout=10)
    assert [c.status for c in peer.calls] == [500] * len(peer.calls)
    assert 1 <= len(peer.calls) <= len(config.operations)  # one call per operation at most, no retries
    assert "1001" in caplog.text and "wrong-password" not in caplog.text
    assert await SqlConnectorState(engine, CONNECTOR).load("cursor:QueryInspections") is None
    engine.dispose()


@pytest.mark.parametrize("fault", ["5000", "503", "502"])
async def test_transient_faults_are_retried_on_the_same_page(tmp_path: Path, fault: str) -> None:
    publisher, store, engine = publisher_on(tmp_path)
    async with peer_with(inspections=3, penalties=0) as peer:
        peer.fail(fault, times=2)
        config = SoapPollConnector.Config.model_validate(
            options(peer, operations=[{"name": "QueryInspections", "variant": "inspection"}]))
        connector = SoapPollConnector(CONNECTOR, config, ConnectorContext(state=SqlConnectorState(engine, CONNECTOR)))
        task = asyncio.create_task(supervise(CONNECTOR, partial(connector.run, publisher)))
        await asyncio.wait_for(connector.caught_up.wait(), timeout=20)
        task.cancel()
    first = peer.calls[:4]
    assert [(c.page_no, c.status) for c in first] == [(1, int(fault) if fault != "5000" else 500)] * 2 + [
        (1, 200), (2, 200)]
    assert store.totals()["accepted"] + store.totals()["rejected"] == 3
    engine.dispose()


async def test_rate_limit_fault_waits_at_least_a_minute(tmp_path: Path) -> None:
    publisher, store, engine = publisher_on(tmp_path)
    waits: list[float] = []

    async def recorded_sleep(seconds: float) -> None:
        waits.append(seconds)
        await asyncio.sleep(0)

    async with peer_with(inspections=2, penalties=0) as peer:
        peer.fail("3001", times=1)
        config = SoapPollConnector.Config.model_validate(
            options(peer, operations=[{"name": "QueryInspections", "variant": "inspection"}]))
        connector = SoapPollConnector(CONNECTOR, config, ConnectorContext(state=SqlConnectorState(engine, CONNECTOR)),
                                      sleep=recorded_sleep)
        task = asyncio.create_task(connector.run(publisher))
        await asyncio.wait_for(connector.caught_up.wait(), timeout=20)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert waits and waits[0] >= 60
    assert [c.status for c in peer.calls[:2]] == [500, 200]
    assert store.totals()["accepted"] + store.totals()["rejected"] == 2
    engine.dispose()
