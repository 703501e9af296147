"""Delivery benchmark: accepted records from the outbox into the PostgreSQL data centre and the fake
national platform.

    python bench/delivery.py [--records 20000] [--batch 1000] [--national-batch N]

Throughput: N penalty records (mapped once through the real mapping, then given distinct ids) are
queued for both targets; two delivery workers drain them at once, one into ``ex_penalty`` on the
local PostgreSQL (a throw-away schema), one over signed HTTP (HMAC-SM3) to the fake national
platform (``tests/peers/national_platform_server.py``, in a process of its own, like a real peer),
each settling every result with its journey. records/s = N / the time until both targets hold all
N (checked at both). Measured on the SQLite outbox (embedded) and on the Redis Streams outbox.
Latency: records queued for both targets at a steady 2,000/s into the Redis outbox, from enqueue
to settled delivery at each target, p50/p99. Figures as one JSON object on the last line.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from adapters.data_centre import DataCentreAdapter, DataCentreConfig  # noqa: E402
from adapters.national_platform import NationalPlatformAdapter, NationalPlatformConfig  # noqa: E402
from adapters.national_platform.payload import MAX_RECORDS  # noqa: E402
from gateway.delivery import DeliveryWorker  # noqa: E402
from gateway.durable import SqlGatewayStore  # noqa: E402
from gateway.envelope import Envelope  # noqa: E402
from gateway.gc_tuning import tune_for_throughput  # noqa: E402
from gateway.ingest import Ingestor  # noqa: E402
from gateway.stores.db import create_engine_for, init_schema  # noqa: E402
from gateway.stores.outbox import Outbox, OutboxRow  # noqa: E402
from gateway.stores.redis_outbox import RedisOutbox  # noqa: E402
from gateway.stores.sent_batches import RedisBatchJournal, SqlBatchJournal  # noqa: E402
from mapping.calendar import WorkingCalendar  # noqa: E402
from mapping.catalog import load_catalog  # noqa: E402
from tests.conftest import free_port  # noqa: E402
from tests.peers.national_platform_server import APP_ID, APP_SECRET  # noqa: E402
from tests.redis_keys import drop_keys  # noqa: E402

PG = "postgresql://postgres@127.0.0.1:5432/test"
REDIS = "redis://127.0.0.1:6379/0"


def mapped_records(n: int) -> list[dict[str, Any]]:
    page = json.loads((ROOT / "config/samples/eco-rest/penalties-page-1.json").read_text(encoding="utf-8"))
    base = page["items"][0]
    items = []
    for i in range(200):
        item = copy.deepcopy(base)
        item.update(id=f"HJCF-330111-2025-{i:06d}", decisionNo=f"杭环富罚〔2025〕{i}号")
        items.append(item)
    mapping = load_catalog(ROOT / "config/mappings")["eco-rest.penalty"]
    envelope = Envelope(connector="bench", payload=items, received_at=datetime.now(UTC), department="eco",
                        meta={"department": "eco"}, raw=None, records_inline=True)
    outcomes = Ingestor().evaluate(mapping, envelope, None)
    good = [o.record for o in outcomes if o.status == "accepted"]
    out = []
    for i in range(n):
        record = dict(good[i % len(good)])
        record["record_id"] = str(uuid.uuid4())
        out.append(record)
    return out


def rows(records: Sequence[dict[str, Any]], adapter: str) -> list[OutboxRow]:
    now = datetime.now(UTC)
    return [OutboxRow(adapter=adapter, record_id=r["record_id"], kind="penalty", payload=r, enqueued_at=now,
                      department="eco", business_key=(r["record_id"],)) for r in records]


class Latencies:
    def __init__(self) -> None:
        self.values: list[float] = []

    def envelope_received(self, connector: str) -> None: ...
    def record_outcome(self, connector: str, kind: str, status: str, error_codes: Sequence[str],
                       department: str | None = None, n: int = 1) -> None: ...
    def store_write_failed(self, connector: str) -> None: ...
    def connector_event(self, connector: str, name: str, n: int = 1) -> None: ...
    def connector_gauge(self, connector: str, name: str, value: float, key: str | None = None) -> None: ...
    def connector_state(self, connector: str, up: bool, last_record_at: object = None) -> None: ...

    def delivery_result(self, adapter: str, kind: str, status: str, latency_s: float | None,
                        department: str | None = None) -> None:
        if latency_s is not None:
            self.values.append(latency_s)


class NationalPeer:
    """The fake national platform in a process of its own (a peer, not part of the gateway)."""

    def __init__(self) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self._process = subprocess.Popen([sys.executable, "-m", "tests.peers.national_platform_server", str(port)],
                                         cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        assert self._process.stdout is not None
        self._process.stdout.readline()  # its URL: it is serving

    def stored(self) -> tuple[int, int]:
        answer = httpx.get(f"{self.url}/_peer/stored", timeout=10).json()
        return int(answer["records"]), int(answer["stored_twice"])

    def stop(self) -> None:
        self._process.terminate()
        self._process.wait(timeout=10)


ADAPTERS = ("dc", "national")


OPENED: list[Any] = []  # adapters to close at the end


def make(tmp: Path, outbox_kind: str, schema: str, hooks: Latencies | None, batch: int, national_url: str,
         national_batch: int, database: Path | None = None) -> tuple[list[DeliveryWorker], Outbox, SqlGatewayStore]:
    engine = create_engine_for(f"sqlite:///{database or tmp / f'{outbox_kind}-{uuid.uuid4().hex[:6]}.sqlite'}")
    init_schema(engine)
    outbox: Outbox | None = None
    if outbox_kind == "redis":  # a consumer per process, as every gateway instance has
        outbox = RedisOutbox.from_url(REDIS, prefix=f"bench-{schema}", consumer=f"bench-{os.getpid()}")
    store = SqlGatewayStore(engine, WorkingCalendar((), ()), outbox=outbox)
    data_centre = DataCentreAdapter(DataCentreConfig(url=PG, db_schema=schema, create_tables=True,  # type: ignore[arg-type]
                                                     feedback_interval_s=None))
    national = NationalPlatformAdapter(NationalPlatformConfig(base_url=national_url, app_id=APP_ID,  # type: ignore[arg-type]
                                                              app_secret=APP_SECRET))
    # the batch journal the runtime gives the national adapter: beside the outbox
    national.use_journal(RedisBatchJournal.from_url(REDIS, prefix=f"bench-{schema}", adapter="national")
                         if outbox_kind == "redis" else SqlBatchJournal(engine, "national"))
    OPENED.extend((data_centre, national))
    workers = [DeliveryWorker(name, adapter, store, batch_size=size, max_wait_s=0.05, hooks=hooks)  # type: ignore[arg-type]
               for name, adapter, size in zip(ADAPTERS, (data_centre, national), (batch, national_batch), strict=True)]
    return workers, store.outbox, store


def queue(outbox: Outbox, records: Sequence[dict[str, Any]]) -> None:
    for adapter in ADAPTERS:
        outbox.put_many(rows(records, adapter))


async def drain(worker: DeliveryWorker) -> int:
    delivered = 0
    while (n := await worker.run_once()) > 0:
        delivered += n
    return delivered


async def throughput(tmp: Path, kind: str, records: list[dict[str, Any]], batch: int, schema: str,
                     national: NationalPeer, national_batch: int, processes: int = 1) -> float:
    database = tmp / f"{kind}-{schema}.sqlite"
    workers, outbox, _ = make(tmp, kind, schema, None, batch, national.url, national_batch, database)
    tune_for_throughput()  # as `sgw run` does
    warm = records[:batch]
    queue(outbox, warm)
    await asyncio.gather(*(drain(w) for w in workers))  # tables created, connections warm
    children = await delivery_processes(processes, database, schema, batch, national.url, national_batch) \
        if processes > 1 else []
    rest = records[batch:]
    for start in range(0, len(rest), 5000):
        queue(outbox, rest[start:start + 5000])
    held_before, _ = national.stored()
    if children:
        delivered, elapsed = await run_processes(children)
    else:
        started = time.perf_counter()
        delivered = await asyncio.gather(*(drain(w) for w in workers))
        elapsed = time.perf_counter() - started
    held, twice = national.stored()
    assert delivered == [len(rest)] * len(workers), delivered
    assert held - held_before == len(rest) and twice == 0, (held - held_before, twice)
    assert ex_penalty_rows(schema) == len(records)
    return len(rest) / elapsed


async def delivery_processes(processes: int, database: Path, schema: str, batch: int, national_url: str,
                             national_batch: int) -> list[asyncio.subprocess.Process]:
    """``processes`` delivery instances of their own (as `sgw run --role delivery` runs them), sharing
    the Redis consumer groups; they return once each has its connections open and waits to start."""
    command = [sys.executable, str(Path(__file__).resolve()), "--serve-worker", str(database), schema,
               str(batch), national_url, str(national_batch)]
    children = [await asyncio.create_subprocess_exec(*command, stdin=asyncio.subprocess.PIPE,
                                                     stdout=asyncio.subprocess.PIPE) for _ in range(processes)]
    for child in children:
        assert child.stdout is not None
        assert (await child.stdout.readline()).strip() == b"ready"
    return children


async def run_processes(children: list[asyncio.subprocess.Process]) -> tuple[list[int], float]:
    """Start the delivery processes; records delivered per adapter, seconds until the last finished."""
    started = time.perf_counter()
    for child in children:
        assert child.stdin is not None
        child.stdin.write(b"go\n")
        await child.stdin.drain()
    answers = []
    for child in children:
        assert child.stdout is not None
        answers.append(json.loads(await child.stdout.readline()))
    elapsed = time.perf_counter() - started
    for child in children:
        await child.wait()
    return [sum(a[i] for a in answers) for i in range(len(ADAPTERS))], elapsed


async def serve_worker(database: Path, schema: str, batch: int, national_url: str, national_batch: int) -> None:
    """One delivery process of ``in_processes``: drains every adapter's outbox, prints the counts."""
    workers, _, _ = make(database.parent, "redis", schema, None, batch, national_url, national_batch, database)
    tune_for_throughput()
    try:
        await asyncio.gather(*(drain(w) for w in workers))  # nothing to claim yet: connections open
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        delivered = await asyncio.gather(*(drain(w) for w in workers))
        print(json.dumps(delivered), flush=True)
    finally:
        for adapter in OPENED:
            await adapter.close()


def ex_penalty_rows(schema: str) -> int:
    engine = sa.create_engine(PG.replace("postgresql://", "postgresql+psycopg://"))
    with engine.connect() as conn:
        count = int(conn.execute(sa.text(f'SELECT count(*) FROM "{schema}".ex_penalty')).scalar_one())
    engine.dispose()
    return count


async def latency(tmp: Path, records: list[dict[str, Any]], schema: str, rate_per_s: int, seconds: float,
                  national: NationalPeer, national_batch: int) -> tuple[float, float]:
    hooks = Latencies()
    workers, outbox, _ = make(tmp, "redis", schema, hooks, 1000, national.url, national_batch)
    tasks = [asyncio.create_task(w.run()) for w in workers]
    tick_s = 0.02
    per_tick = int(rate_per_s * tick_s)
    started = time.perf_counter()
    sent = 0
    while time.perf_counter() - started < seconds and sent + per_tick <= len(records):
        await asyncio.to_thread(queue, outbox, records[sent:sent + per_tick])
        sent += per_tick
        for worker in workers:
            worker.notify()
        await asyncio.sleep(max(0.0, started + (sent / rate_per_s) - time.perf_counter()))
    deadline = time.perf_counter() + 10
    while len(hooks.values) < sent * len(workers) and time.perf_counter() < deadline:
        await asyncio.sleep(0.05)
    for worker in workers:
        worker.request_stop()
    await asyncio.gather(*tasks)
    values = sorted(hooks.values)
    return statistics.median(values) * 1000, values[int(len(values) * 0.99) - 1] * 1000


def cleanup(schemas: list[str]) -> None:
    engine = sa.create_engine(PG.replace("postgresql://", "postgresql+psycopg://"))
    with engine.begin() as conn:
        for schema in schemas:
            conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    engine.dispose()
    for schema in schemas:
        drop_keys(f"bench-{schema}:*", REDIS)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--national-batch", type=int, default=None, help=(
        "claim size of the national platform's worker; default --batch (sent as POSTs of at most "
        f"{MAX_RECORDS} records, the platform's limit; claiming {MAX_RECORDS} at a time measured no faster: "
        "claim and settle cost more per call than a second POST)"))
    parser.add_argument("--processes", type=int, default=3, help=(
        "delivery processes for the Redis outbox (each like `sgw run --role delivery`); the embedded run "
        "is one process by definition"))
    parser.add_argument("--serve-worker", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_worker:
        database, schema, batch, national_url, national_batch = args.serve_worker
        await serve_worker(Path(database), schema, int(batch), national_url, int(national_batch))
        return
    if args.national_batch is None:
        args.national_batch = args.batch
    records = mapped_records(args.records)
    schemas = [f"bench_{uuid.uuid4().hex[:8]}" for _ in range(3)]
    national = NationalPeer()
    try:
        with tempfile.TemporaryDirectory() as folder:
            tmp = Path(folder)
            embedded = await throughput(tmp, "sqlite", records, args.batch, schemas[0], national,
                                        args.national_batch)
            print(f"embedded (SQLite outbox): {embedded:,.0f} records/s to both targets", file=sys.stderr)
            on_redis = await throughput(tmp, "redis", mapped_records(args.records), args.batch, schemas[1], national,
                                        args.national_batch, args.processes)
            print(f"redis outbox, {args.processes} delivery process(es): {on_redis:,.0f} records/s to both targets",
                  file=sys.stderr)
            p50, p99 = await latency(tmp, mapped_records(12_000), schemas[2], 2000, 5.0, national,
                                     args.national_batch)
            print(f"latency at 2,000 records/s: p50 {p50:.1f} ms, p99 {p99:.1f} ms", file=sys.stderr)
    finally:
        for adapter in OPENED:
            await adapter.close()
        national.stop()
        cleanup(schemas)
    print(json.dumps({"redis_records_per_s": round(on_redis), "embedded_records_per_s": round(embedded),
                      "p50_ms": round(p50, 1), "p99_ms": round(p99, 1), "records": args.records,
                      "deliveries_per_record": len(ADAPTERS),
                      "batch_size": args.batch, "national_batch_size": args.national_batch,
                      "redis_delivery_processes": args.processes,
                      "targets": ["data_centre (PostgreSQL)", "national_platform (fake, HTTP, HMAC-SM3)"]}))


if __name__ == "__main__":
    asyncio.run(main())
