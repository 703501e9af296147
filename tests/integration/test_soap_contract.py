"""The ministry SOAP contract's harder answers over real sockets, ending in the data centre's tables.

Contract: shared/sources/ministry-soap/README.md ("Operations and paging", "Crosswalk").
"""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from connectors.base import ConnectorContext
from connectors.soap.poll import SoapPollConnector
from gateway.errors import PermanentError
from gateway.stores.connector_state import SqlConnectorState
from tests.conftest import SAMPLES
from tests.integration.test_soap_poll import CONNECTOR, make_runtime, options, publisher_on, run_until_caught_up, start
from tests.peers.soap_server import PeerCall, SoapPeer, generate

pytestmark = pytest.mark.integration

INSPECTIONS = {"operations": [{"name": "QueryInspections", "variant": "inspection"}]}
XSI = "http://www.w3.org/2001/XMLSchema-instance"


def check_action_nos(tmp_path: Path) -> list[str]:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'dc.sqlite'}")
    try:
        with engine.connect() as conn:
            return sorted(conn.execute(sa.text("SELECT check_action_no FROM ex_inspection")).scalars())
    finally:
        engine.dispose()


async def test_a_record_updated_while_its_window_is_paged_skips_no_other_record(tmp_path: Path) -> None:
    records = generate("QueryInspections", 7, start() + timedelta(hours=1), step_s=60)
    moved = dict(records[1], GXSJ=(start() + timedelta(days=1, hours=1)).strftime("%Y%m%d%H%M%S"), CZLX="U")

    def update_during_paging(call: PeerCall) -> None:
        if len(peer.calls) == 1:  # after page 1 of the first window: records[1] moves to the next window
            peer.records["QueryInspections"] = [moved if r is records[1] else r for r in records]

    async with SoapPeer(records={"QueryInspections": records}) as peer:
        peer.after_call = update_during_paging
        runtime = make_runtime(tmp_path, peer, **INSPECTIONS)
        await run_until_caught_up(runtime)
    totals = runtime.store.totals()
    assert totals["rejected"] == 0
    assert set(check_action_nos(tmp_path)) == {r["JCBH"] for r in records}
    assert totals["duplicate"] >= 1  # the re-read page 1 came back and was dropped


async def test_a_page_with_xsi_nil_optional_elements_is_accepted(tmp_path: Path) -> None:
    sample = (SAMPLES / "ministry-soap" / "query-inspections-response-page1.xml").read_text(encoding="utf-8")
    page = sample.replace("<soap:Envelope ", f'<soap:Envelope xmlns:xsi="{XSI}" ')
    for name in ("QYDZ", "HYLB", "JCNR", "YBYHS", "TBR"):
        page = re.sub(rf"<{name}>[^<]*</{name}>", f'<{name} xsi:nil="true"/>', page)
    async with SoapPeer(canned={("QueryInspections", 1): page.encode()}) as peer:
        runtime = make_runtime(tmp_path, peer, **INSPECTIONS, page_size=50)
        await run_until_caught_up(runtime)
    totals = runtime.store.totals()
    # the canned page answers every window's page 1: the first window accepts, later ones are duplicates
    assert (totals["accepted"], totals["rejected"]) == (3, 0)
    assert check_action_nos(tmp_path) == sorted(["YJJC2025330110000412", "YJJC2025330110000415",
                                                 "YJJC2025330110000388"])


# README "Errors": the account locks after 5 failed logins in 10 minutes. Until one call has got
# through, calls go one at a time, so a wrong password costs one failure per start, not one per
# operation (a few restarts by an operator must not lock the province's account).
async def test_a_wrong_password_costs_one_failed_call_however_many_operations(tmp_path: Path) -> None:
    publisher, _, engine = publisher_on(tmp_path)
    async with SoapPeer(records={"QueryInspections": generate("QueryInspections", 3, start()),
                                 "QueryPenalties": generate("QueryPenalties", 3, start())}) as peer:
        config = SoapPollConnector.Config.model_validate(options(peer, password="wrong-password"))
        connector = SoapPollConnector(CONNECTOR, config, ConnectorContext(state=SqlConnectorState(engine, CONNECTOR)))
        with pytest.raises(PermanentError, match="1001"):
            await asyncio.wait_for(connector.run(publisher), timeout=10)
    engine.dispose()
    assert len(config.operations) == 2
    assert [c.status for c in peer.calls] == [500]


async def test_after_the_first_call_both_operations_are_read_concurrently(tmp_path: Path) -> None:
    async with SoapPeer(records={"QueryInspections": generate("QueryInspections", 3, start() + timedelta(hours=1)),
                                 "QueryPenalties": generate("QueryPenalties", 3, start() + timedelta(hours=1))},
                        delay_s=0.05) as peer:
        runtime = make_runtime(tmp_path, peer)
        await run_until_caught_up(runtime)
    assert peer.max_in_flight == 2
