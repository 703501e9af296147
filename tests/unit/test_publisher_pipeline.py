"""The publisher writes one envelope while it evaluates the next: the next must see the records
still being written, and must not be written (nor acknowledged) when the one before it failed."""

from __future__ import annotations

import asyncio
import csv
import io
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from gateway.durable import SqlGatewayStore
from gateway.envelope import Envelope
from gateway.errors import StoreUnavailable
from gateway.ingest import Ingestor, RecordOutcome
from gateway.publisher import Publisher
from gateway.stores.db import create_engine_for, init_schema
from mapping.calendar import WorkingCalendar
from mapping.catalog import load_catalog
from monitoring.metrics import PrometheusHooks
from tests.conftest import MAPPINGS, SAMPLES
from tests.unit.test_monitoring import samples

SAMPLE = SAMPLES / "batch-files" / "113301220025023382_XZCF_20250612_001.csv"
FILE = SAMPLE.name


def sample_rows() -> list[dict[str, str]]:
    import csv
    import io

    rows = list(csv.reader(io.StringIO(SAMPLE.read_bytes().decode("gb18030"), newline="")))
    return [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]


def envelope(rows: list[dict[str, str]], offset: int) -> Envelope:
    meta = {"file": FILE, "location": FILE, "provider_uscc": "113301220025023382", "file_kind": "XZCF",
            "file_mtime": "2025-06-12T18:00:00+08:00",
            "variant": "csv", "row_offset": offset}
    return Envelope(connector="batch", payload=rows, received_at=datetime.now(UTC), meta=meta, records_inline=True)


class GatedStore(SqlGatewayStore):
    """Holds its first write until ``release`` is set, then fails it when ``fail_first``."""

    def __init__(self, engine: sa.Engine, *, fail_first: bool) -> None:
        super().__init__(engine, WorkingCalendar())
        self.fail_first = fail_first
        self.entered = threading.Event()
        self.release = threading.Event()
        self.writes = 0

    def write(self, envelope: Envelope, outcomes: Sequence[RecordOutcome],
              routes: Callable[[str], tuple[str, ...]]) -> None:
        self.writes += 1
        if self.writes == 1:
            self.entered.set()
            assert self.release.wait(10)
            if self.fail_first:
                raise StoreUnavailable("down (test)")
        super().write(envelope, outcomes, routes)


class CountingIngestor(Ingestor):
    def __init__(self) -> None:
        super().__init__()
        self.evaluated = 0

    def evaluate(self, *args: Any, **kwargs: Any) -> list[RecordOutcome]:
        outcomes = super().evaluate(*args, **kwargs)
        self.evaluated += 1
        return outcomes


def publisher_over(tmp_path: Path, *, fail_first: bool) -> tuple[Publisher, GatedStore]:
    engine = create_engine_for(f"sqlite:///{tmp_path / 'gateway.sqlite'}")
    init_schema(engine)
    store = GatedStore(engine, fail_first=fail_first)
    catalog = load_catalog(MAPPINGS)
    publisher = Publisher(ingestor=CountingIngestor(), mappings={"batch": {"csv": catalog["batch-files.penalty-csv"]}},
                          store=store, routes=lambda _kind: ("data-centre",))
    return publisher, store


def accepted_count(store: SqlGatewayStore) -> int:
    with store.records._engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT count(*) FROM accepted_records")).scalar_one())


async def evaluated_while_first_is_written(publisher: Publisher, store: GatedStore,
                                           first: Envelope, second: Envelope) -> tuple[Any, Any]:
    one = asyncio.create_task(publisher.publish(first))
    await asyncio.to_thread(store.entered.wait, 10)  # the first envelope is being written...
    two = asyncio.create_task(publisher.publish(second))
    ingestor = publisher._ingestor
    assert isinstance(ingestor, CountingIngestor)
    while ingestor.evaluated < 2:
        await asyncio.sleep(0.01)  # ...and the second has been evaluated meanwhile
    store.release.set()
    return await asyncio.gather(one, two, return_exceptions=True)


async def test_the_next_envelope_sees_the_records_still_being_written(tmp_path: Path) -> None:
    rows = sample_rows()
    publisher, store = publisher_over(tmp_path, fail_first=False)
    first, second = await evaluated_while_first_is_written(
        publisher, store, envelope(rows[:10], 0), envelope(rows[5:15], 5))
    assert [o.status for o in first.outcomes] == ["accepted"] * 10
    # rows 5-9 were in the first envelope, not yet committed when the second was judged
    assert [o.status for o in second.outcomes] == ["duplicate"] * 5 + ["accepted"] * 5
    assert accepted_count(store) == 15


async def test_an_envelope_judged_over_a_failed_write_is_not_written(tmp_path: Path) -> None:
    rows = sample_rows()
    publisher, store = publisher_over(tmp_path, fail_first=True)
    first, second = await evaluated_while_first_is_written(
        publisher, store, envelope(rows[:10], 0), envelope(rows[5:15], 5))
    assert isinstance(first, StoreUnavailable)
    assert isinstance(second, StoreUnavailable)  # it counted rows 5-9 as duplicates of unwritten ones
    assert store.writes == 1 and accepted_count(store) == 0
    again = await publisher.publish(envelope(rows[5:15], 5))  # the source sends it again: judged afresh
    assert [o.status for o in again.outcomes] == ["accepted"] * 10
    assert accepted_count(store) == 10


async def test_the_hooks_hear_an_envelopes_outcomes_grouped_and_the_counts_add_up(tmp_path: Path) -> None:
    bad = SAMPLES / "batch-files" / "113301220025023382_XZCF_20250612_002.csv"
    rows = list(csv.reader(io.StringIO(bad.read_bytes().decode("gb18030"), newline="")))
    payload = [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]
    hooks = PrometheusHooks()
    calls: list[int] = []
    heard = hooks.record_outcome

    def record_outcome(*args: Any, **kwargs: Any) -> None:
        calls.append(kwargs.get("n", 1))
        heard(*args, **kwargs)

    hooks.record_outcome = record_outcome  # type: ignore[method-assign]
    publisher, store = publisher_over(tmp_path, fail_first=False)
    publisher._hooks = hooks
    store.release.set()
    result = await publisher.publish(envelope(payload, 0))
    receipt = result.receipt
    totals = {dict(k)["status"]: v for k, v in samples(hooks, "sgw_records_total").items()}
    assert totals == {s: n for s, n in (("accepted", receipt.accepted), ("rejected", receipt.rejected),
                                        ("duplicate", receipt.duplicate)) if n}
    assert sum(calls) == len(payload) == sum(totals.values()) and len(calls) < len(payload)
