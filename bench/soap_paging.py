"""SOAP paging throughput: the connector pages through the ministry test peer over a local socket.

Two runs over the same records: ``fetch`` (publish does nothing: WSDL-built requests, HTTP, the
soap codec, paging) and ``publish`` (a real Publisher: mapping, validation, one SQLite transaction
per page into the outbox and the rejections ledger, in a temp dir). The peer runs in the same
process and event loop, so its page building is included in the time. Run by hand:

    .venv/bin/python bench/soap_paging.py [--records 20000] [--page-size 200] [--operation QueryPenalties]
                                          [--map-processes N]

With ``--map-processes N`` the publisher maps and checks pages in N worker processes
(``ingest.map_processes``).

Figures print as JSON on the last line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(ROOT))

from connectors.base import ConnectorContext, MemoryState, Publish, PublishReceipt  # noqa: E402
from connectors.soap.poll import SoapPollConnector  # noqa: E402
from connectors.soap.window import BEIJING  # noqa: E402
from gateway.durable import SqlGatewayStore  # noqa: E402
from gateway.envelope import Envelope  # noqa: E402
from gateway.ingest import Ingestor  # noqa: E402
from gateway.map_pool import MapPool  # noqa: E402
from gateway.publisher import Publisher  # noqa: E402
from gateway.stores.db import create_engine_for, init_schema  # noqa: E402
from mapping.calendar import WorkingCalendar  # noqa: E402
from mapping.catalog import load_catalog  # noqa: E402
from tests.peers.soap_server import PASSWORD, USERNAME, SoapPeer, generate  # noqa: E402

VARIANTS = {"QueryInspections": "inspection", "QueryPenalties": "penalty"}
FIRST_GXSJ = datetime(2025, 6, 3, 0, 0, 1)
NOW = datetime(2025, 6, 4, 0, 0, tzinfo=BEIJING)


class Counting:
    """Wraps publish, counting records and pages."""

    def __init__(self, inner: Publish | None) -> None:
        self.inner = inner
        self.pages = 0
        self.accepted = self.rejected = self.duplicate = 0

    async def __call__(self, envelope: Envelope) -> PublishReceipt:
        self.pages += 1
        if self.inner is None:
            return PublishReceipt(envelope.envelope_id, accepted=0, rejected=0, duplicate=0)
        receipt = await self.inner(envelope)
        self.accepted += receipt.accepted
        self.rejected += receipt.rejected
        self.duplicate += receipt.duplicate
        return receipt


def real_publisher(directory: Path, operation: str, pool: MapPool | None) -> Publish:
    engine = create_engine_for(f"sqlite:///{directory / 'gateway.sqlite'}")
    init_schema(engine)
    catalog = load_catalog(ROOT / "config" / "mappings")
    variant = VARIANTS[operation]
    mappings = {"ministry": {variant: catalog[f"ministry-soap.{variant}"]}}
    return Publisher(ingestor=Ingestor(), mappings=mappings, store=SqlGatewayStore(engine, WorkingCalendar()),
                     routes=lambda kind: ("data-centre",), map_pool=pool)


async def run_once(peer: SoapPeer, operation: str, page_size: int, publish: Counting) -> float:
    options = {"wsdl": peer.wsdl_url, "username": USERNAME, "password": PASSWORD,
               "operations": [{"name": operation, "variant": VARIANTS[operation]}], "page_size": page_size,
               "window_s": 86400, "start_time": "2025-06-03T00:00:00", "max_calls_per_min": 1_000_000,
               "max_concurrency": 2, "poll_interval_s": 3600, "timeout_s": 60}
    connector = SoapPollConnector("ministry", SoapPollConnector.Config.model_validate(options),
                                  ConnectorContext(state=MemoryState()), clock=lambda: NOW)
    started = time.perf_counter()
    task = asyncio.create_task(connector.run(publish))
    await connector.caught_up.wait()
    elapsed = time.perf_counter() - started
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    return elapsed


async def main(records: int, page_size: int, operation: str, map_processes: int = 0) -> dict[str, Any]:
    data = generate(operation, records, FIRST_GXSJ, step_s=86399 / records)
    figures: dict[str, Any] = {"bench": "soap_paging", "operation": operation, "records": records,
                               "page_size": page_size}
    async with SoapPeer(records={operation: data}) as peer:
        peer.warm()  # the peer's one-off ordering and XML of its records is not the connector's time
        fetch = Counting(None)
        seconds = await run_once(peer, operation, page_size, fetch)
        calls = len(peer.calls)
        figures["fetch"] = {"seconds": round(seconds, 3), "records_per_s": round(records / seconds),
                            "pages": fetch.pages, "calls": calls}
        pool = MapPool(map_processes) if map_processes else None
        if pool is not None:
            await pool.start()
        try:
            with tempfile.TemporaryDirectory() as tmp:
                full = Counting(real_publisher(Path(tmp), operation, pool))
                seconds = await run_once(peer, operation, page_size, full)
        finally:
            if pool is not None:
                pool.close()
        figures["publish"] = {"seconds": round(seconds, 3), "records_per_s": round(records / seconds),
                              "pages": full.pages, "calls": len(peer.calls) - calls, "accepted": full.accepted,
                              "rejected": full.rejected, "duplicate": full.duplicate,
                              "map_processes": map_processes}
    figures["load_average_1m"] = round(os.getloadavg()[0], 2)
    figures["cpus"] = os.cpu_count()
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--page-size", type=int, default=200)
    parser.add_argument("--operation", choices=sorted(VARIANTS), default="QueryPenalties")
    parser.add_argument("--map-processes", type=int, default=0, help="map pages in this many worker processes")
    args = parser.parse_args()
    result = asyncio.run(main(args.records, args.page_size, args.operation, args.map_processes))
    print(json.dumps(result, ensure_ascii=False))
