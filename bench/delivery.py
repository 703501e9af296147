"""Delivery benchmark: accepted records from the outbox into the PostgreSQL data centre.

    python bench/delivery.py [--records 20000] [--batch 1000]

Throughput: the outbox is filled with N penalty records (mapped once through the real mapping,
then given distinct ids), one delivery worker drains it into ``ex_penalty`` on the local
PostgreSQL (a throw-away schema), settling each result with its journey; measured on the SQLite
outbox (embedded) and on the Redis Streams outbox. Latency: records queued at a steady 2,000/s
into the Redis outbox, end-to-end from enqueue to settled delivery, p50/p99.
Figures as one JSON object on the last line. The national platform is not included yet.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from adapters.data_centre import DataCentreAdapter, DataCentreConfig  # noqa: E402
from gateway.delivery import DeliveryWorker  # noqa: E402
from gateway.durable import SqlGatewayStore  # noqa: E402
from gateway.envelope import Envelope  # noqa: E402
from gateway.ingest import Ingestor  # noqa: E402
from gateway.stores.db import create_engine_for, init_schema  # noqa: E402
from gateway.stores.outbox import Outbox, OutboxRow  # noqa: E402
from gateway.stores.redis_outbox import RedisOutbox  # noqa: E402
from mapping.calendar import WorkingCalendar  # noqa: E402
from mapping.catalog import load_catalog  # noqa: E402

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
    def record_outcome(self, connector: str, kind: str, status: str, error_codes: Sequence[str]) -> None: ...
    def store_write_failed(self, connector: str) -> None: ...

    def delivery_result(self, adapter: str, kind: str, status: str, latency_s: float | None) -> None:
        if latency_s is not None:
            self.values.append(latency_s)


def make(tmp: Path, outbox_kind: str, schema: str, hooks: Latencies | None, batch: int
         ) -> tuple[DeliveryWorker, Outbox, SqlGatewayStore]:
    engine = create_engine_for(f"sqlite:///{tmp / f'{outbox_kind}-{uuid.uuid4().hex[:6]}.sqlite'}")
    init_schema(engine)
    outbox: Outbox | None = None
    if outbox_kind == "redis":
        outbox = RedisOutbox.from_url(REDIS, prefix=f"bench-{schema}", consumer="bench")
    store = SqlGatewayStore(engine, WorkingCalendar((), ()), outbox=outbox)
    adapter = DataCentreAdapter(DataCentreConfig(url=PG, db_schema=schema, create_tables=True))  # type: ignore[arg-type]
    worker = DeliveryWorker("dc", adapter, store, batch_size=batch, max_wait_s=0.05, hooks=hooks)  # type: ignore[arg-type]
    return worker, store.outbox, store


async def throughput(tmp: Path, kind: str, records: list[dict[str, Any]], batch: int, schema: str) -> float:
    worker, outbox, _ = make(tmp, kind, schema, None, batch)
    for start in range(0, len(records), 5000):
        outbox.put_many(rows(records[start:start + 5000], "dc"))
    await worker.run_once()  # tables created, connections warm
    started = time.perf_counter()
    delivered = 0
    while True:
        n = await worker.run_once()
        if n == 0:
            break
        delivered += n
    elapsed = time.perf_counter() - started
    return delivered / elapsed


async def latency(tmp: Path, records: list[dict[str, Any]], schema: str, rate_per_s: int, seconds: float
                  ) -> tuple[float, float]:
    hooks = Latencies()
    worker, outbox, _ = make(tmp, "redis", schema, hooks, 1000)
    task = asyncio.create_task(worker.run())
    tick_s = 0.02
    per_tick = int(rate_per_s * tick_s)
    started = time.perf_counter()
    sent = 0
    while time.perf_counter() - started < seconds and sent + per_tick <= len(records):
        await asyncio.to_thread(outbox.put_many, rows(records[sent:sent + per_tick], "dc"))
        sent += per_tick
        worker.notify()
        await asyncio.sleep(max(0.0, started + (sent / rate_per_s) - time.perf_counter()))
    deadline = time.perf_counter() + 10
    while len(hooks.values) < sent and time.perf_counter() < deadline:
        await asyncio.sleep(0.05)
    worker.request_stop()
    await task
    values = sorted(hooks.values)
    return statistics.median(values) * 1000, values[int(len(values) * 0.99) - 1] * 1000


def cleanup(schemas: list[str]) -> None:
    engine = sa.create_engine(PG.replace("postgresql://", "postgresql+psycopg://"))
    with engine.begin() as conn:
        for schema in schemas:
            conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    engine.dispose()
    client = redis.Redis.from_url(REDIS)
    for schema in schemas:
        keys = list(client.scan_iter(match=f"bench-{schema}:*"))
        if keys:
            client.delete(*keys)
    client.close()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=1000)
    args = parser.parse_args()
    records = mapped_records(args.records)
    schemas = [f"bench_{uuid.uuid4().hex[:8]}" for _ in range(3)]
    try:
        with tempfile.TemporaryDirectory() as folder:
            tmp = Path(folder)
            embedded = await throughput(tmp, "sqlite", records, args.batch, schemas[0])
            print(f"embedded (SQLite outbox): {embedded:,.0f} records/s", file=sys.stderr)
            on_redis = await throughput(tmp, "redis", mapped_records(args.records), args.batch, schemas[1])
            print(f"redis outbox: {on_redis:,.0f} records/s", file=sys.stderr)
            p50, p99 = await latency(tmp, mapped_records(12_000), schemas[2], 2000, 5.0)
            print(f"latency at 2,000 records/s: p50 {p50:.1f} ms, p99 {p99:.1f} ms", file=sys.stderr)
    finally:
        cleanup(schemas)
    print(json.dumps({"redis_records_per_s": round(on_redis), "embedded_records_per_s": round(embedded),
                      "p50_ms": round(p50, 1), "p99_ms": round(p99, 1), "records": args.records,
                      "batch_size": args.batch, "targets": ["data_centre (PostgreSQL)"]}))


if __name__ == "__main__":
    asyncio.run(main())
