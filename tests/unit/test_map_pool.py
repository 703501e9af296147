"""Mapping in worker processes (``gateway.map_pool``): the same outcomes as in process, in the
order envelopes arrived, and the gateway's own process takes over whenever a worker cannot."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from gateway.envelope import Envelope
from gateway.ingest import Ingestor, Prepared
from gateway.map_pool import MapPool
from gateway.publisher import Publisher
from mapping.catalog import load_catalog
from mapping.compiler import CompiledMapping, load_mapping
from tests.conftest import MAPPINGS, SAMPLES
from tests.unit.test_batch_files import BATCH, TONGLU, drop_sample, make_harness
from tests.unit.test_publisher_pipeline import envelope, publisher_over, sample_rows

BAD = f"{TONGLU}_XZCF_20250612_002"


@pytest.fixture
async def pool() -> AsyncIterator[MapPool]:
    started = MapPool(1, min_records=1)
    await started.start()
    yield started
    await asyncio.to_thread(started.close)


def csv_mapping() -> CompiledMapping:
    return load_catalog(MAPPINGS)["batch-files.penalty-csv"]


def bad_rows() -> list[dict[str, str]]:
    import csv
    import io

    text = (SAMPLES / "batch-files" / f"{BAD}.csv").read_bytes().decode("gb18030")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    return [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]


async def prepared_by(pool: MapPool, ingestor: Ingestor, mapping: CompiledMapping,
                      sent: Envelope) -> list[Prepared] | None:
    sources = pool.sources_worth_sending(mapping, sent.payload, sent.records_inline)
    assert sources is not None
    return await pool.prepare(ingestor, mapping, sent.payload, ingestor.meta_for(sent),
                              records_inline=sent.records_inline, sources=sources)


def as_compared(outcomes: list[Any]) -> list[Any]:
    return [(o.as_dict(), o.kind, o.business_key, o.index, o.source) for o in outcomes]


async def test_outcomes_through_a_worker_are_those_made_in_process(pool: MapPool) -> None:
    mapping, ingestor = csv_mapping(), Ingestor()
    sent = envelope(bad_rows(), 0)
    prepared = await prepared_by(pool, ingestor, mapping, sent)
    assert prepared is not None and len(prepared) == len(sent.payload)
    here = ingestor.evaluate(mapping, sent, None)
    there = ingestor.evaluate(mapping, sent, None, prepared)
    assert as_compared(there) == as_compared(here)
    # the bad sample has all three: errors and the places they point at are compared
    assert {o.status for o in there} == {"accepted", "rejected", "duplicate"}
    assert all(o.errors[0].location for o in there if o.status == "rejected")


async def test_a_page_read_through_the_mappings_records_path_is_prepared_alike(pool: MapPool) -> None:
    # A REST page: the records sit under the mapping's ``records`` path, each outcome keeps its subtree.
    mapping, ingestor = load_catalog(MAPPINGS)["eco-rest.penalty"], Ingestor()
    page = json.loads((SAMPLES / "eco-rest" / "penalties-page-1.json").read_text(encoding="utf-8"))
    sent = Envelope(connector="eco", payload=page, received_at=datetime.now(UTC),
                    meta={"location": "GET /penalties p1", "variant": "default"})
    prepared = await prepared_by(pool, ingestor, mapping, sent)
    assert prepared is not None and len(prepared) == len(page["items"])
    there = ingestor.evaluate(mapping, sent, None, prepared)
    assert as_compared(there) == as_compared(ingestor.evaluate(mapping, sent, None))
    assert [o.source for o in there] == page["items"]


async def test_the_bad_batch_sample_gives_the_expected_result_file_through_the_pool(tmp_path: Path,
                                                                                  pool: MapPool) -> None:
    h = make_harness(tmp_path)
    h.publisher = Publisher(ingestor=Ingestor(), mappings=h.publisher._mappings, store=h.publisher._store,
                            routes=lambda _kind: ("data-centre",), map_pool=pool)
    drop_sample(h, TONGLU, BAD, "csv")
    assert await h.scan() == 1
    assert (h.root / TONGLU / "result" / f"{BAD}.result.csv").read_bytes() == (BATCH / f"{BAD}.result.csv").read_bytes()
    assert sorted(h.accepted_ids()) == ["CF3301222025000131", "CF3301222025000134", "CF3301222025000137"]
    await asyncio.to_thread(h.engine.dispose)


class HeldPool(MapPool):
    """The first envelope's preparation finishes only after the second's."""

    def __init__(self) -> None:
        super().__init__(1, min_records=1)
        self.calls = 0
        self.second_done = asyncio.Event()

    async def prepare(self, ingestor: Ingestor, mapping: CompiledMapping, payload: Any, meta: Any, *,
                      records_inline: bool, sources: list[tuple[Any, str]]) -> list[Prepared] | None:
        self.calls += 1
        if self.calls == 1:
            await self.second_done.wait()
            return await super().prepare(ingestor, mapping, payload, meta, records_inline=records_inline,
                                         sources=sources)
        try:
            return await super().prepare(ingestor, mapping, payload, meta, records_inline=records_inline,
                                         sources=sources)
        finally:
            self.second_done.set()


async def test_envelopes_are_judged_in_the_order_they_arrived_whichever_is_mapped_first(tmp_path: Path) -> None:
    publisher, store = publisher_over(tmp_path, fail_first=False)
    store.release.set()
    held = HeldPool()
    publisher._map_pool = held
    rows = sample_rows()
    try:
        first, second = await asyncio.gather(publisher.publish(envelope(rows[:10], 0)),
                                             publisher.publish(envelope(rows[5:15], 5)))
    finally:
        await asyncio.to_thread(held.close)
    assert held.calls == 2
    assert [o.status for o in first.outcomes] == ["accepted"] * 10
    assert [o.status for o in second.outcomes] == ["duplicate"] * 5 + ["accepted"] * 5


async def test_a_dead_worker_is_replaced_and_its_envelope_mapped_in_process(pool: MapPool) -> None:
    mapping, ingestor = csv_mapping(), Ingestor()
    sent = envelope(sample_rows(), 0)
    (dead,) = pool.pids()
    os.kill(dead, signal.SIGKILL)
    assert await prepared_by(pool, ingestor, mapping, sent) is None
    prepared = await prepared_by(pool, ingestor, mapping, sent)
    assert prepared is not None and len(prepared) == len(sent.payload)
    assert pool.pids() and dead not in pool.pids()
    assert (pool.prepared, pool.left_to_caller) == (1, 1)


def mappings_folder(tmp_path: Path) -> Path:
    """A mappings folder beside the samples its examples read."""
    (tmp_path / "samples").symlink_to(SAMPLES, target_is_directory=True)
    folder = tmp_path / "mappings"
    folder.mkdir()
    return folder


async def test_a_mapping_the_worker_cannot_compile_is_left_to_the_gateway_process(tmp_path: Path,
                                                                                  pool: MapPool) -> None:
    # Compiled by the gateway, then its reference table went away: a worker compiling it now fails.
    folder = mappings_folder(tmp_path)
    text = (MAPPINGS / "batch-files.penalty-csv.yaml").read_text(encoding="utf-8")
    (folder / "codes.csv").write_text("编号,名称\n1,一\n", encoding="utf-8")
    (folder / "batch-files.penalty-csv.yaml").write_text(
        text.replace("\nfields:\n", "\nreferences:\n  codes: {file: codes.csv, key: 编号}\nfields:\n", 1),
        encoding="utf-8")
    mapping = load_mapping(folder / "batch-files.penalty-csv.yaml")
    shutil.rmtree(folder)
    ingestor = Ingestor()
    sent = envelope(sample_rows(), 0)
    assert await prepared_by(pool, ingestor, mapping, sent) is None
    assert pool.left_to_caller == 1
    publisher = Publisher(ingestor=ingestor, mappings={"batch": {"csv": mapping}}, store=_NoStore(),
                          routes=lambda _kind: ("data-centre",), map_pool=pool)
    result = await publisher.publish(sent)
    assert result.receipt.accepted == len(sent.payload)
    assert (pool.prepared, pool.left_to_caller) == (0, 2)


async def test_each_version_of_a_mapping_is_compiled_in_the_worker(tmp_path: Path, pool: MapPool) -> None:
    folder = mappings_folder(tmp_path)
    text = (MAPPINGS / "batch-files.penalty-csv.yaml").read_text(encoding="utf-8")
    path = folder / "batch-files.penalty-csv.yaml"
    path.write_text(text, encoding="utf-8")
    before = load_mapping(path)
    path.write_text(text.replace("operation: {const: i}", "operation: {const: u}", 1), encoding="utf-8")
    after = load_mapping(path)
    ingestor = Ingestor()
    sent = envelope(sample_rows()[:3], 0)
    old = await prepared_by(pool, ingestor, before, sent)
    new = await prepared_by(pool, ingestor, after, sent)
    assert old is not None and new is not None
    assert {p.mapped.record["operation"] for p in old} == {"i"}
    assert {p.mapped.record["operation"] for p in new} == {"u"}


def test_only_envelopes_of_enough_records_go_to_a_worker() -> None:
    pool = MapPool(1, min_records=3)
    rows, rest = csv_mapping(), load_catalog(MAPPINGS)["eco-rest.penalty"]
    assert pool.sources_worth_sending(rows, [{}, {}, {}], True) == [({}, "[0]"), ({}, "[1]"), ({}, "[2]")]
    assert pool.sources_worth_sending(rows, [{}, {}], True) is None
    assert pool.sources_worth_sending(rows, {"a": 1}, True) is None  # one record
    assert pool.sources_worth_sending(rest, {"items": [{}, {}, {}]}, False) == [
        ({}, "items[0]"), ({}, "items[1]"), ({}, "items[2]")]
    assert pool.sources_worth_sending(rest, {"items": [{}, {}]}, False) is None
    assert pool.sources_worth_sending(rest, {"items": "x"}, False) is None  # MappingError, raised in process
    with pytest.raises(ValueError, match="at least one process"):
        MapPool(0)


class _NoStore:
    """A store without snapshots that keeps nothing (the publisher's serial path)."""

    class _Index:
        def is_duplicate(self, record_id: str) -> bool:
            return False

        def has_accepted(self, kind: str, business_key: tuple[str, ...]) -> bool:
            return False

        def has_inspection(self, implementing_org_uscc: str, check_action_no: str) -> bool:
            return True

    index = _Index()

    def write(self, envelope: Envelope, outcomes: Any, routes: Any) -> None:
        return None

