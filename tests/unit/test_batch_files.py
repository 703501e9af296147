"""The batch-file connector against the contract's samples, with the real publisher and SQLite stores."""

from __future__ import annotations

import asyncio
import hashlib
import io
import re
import shutil
import zipfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from connectors.base import ConnectorContext
from connectors.batch_files import BatchFilesConnector
from gateway.durable import SqlGatewayStore
from gateway.errors import StoreUnavailable
from gateway.ingest import Ingestor
from gateway.publisher import Publisher
from gateway.stores.connector_state import SqlConnectorState
from gateway.stores.db import create_engine_for, init_schema
from mapping.calendar import WorkingCalendar
from mapping.catalog import load_catalog
from tests.conftest import MAPPINGS, SAMPLES

BATCH = SAMPLES / "batch-files"
TONGLU = "113301220025023382"
CHUNAN = "11330127002503410C"
XIHU = "11330106002500121C"


@dataclass
class Harness:
    engine: Engine
    publisher: Publisher
    connector: BatchFilesConnector
    root: Path

    async def scan(self) -> int:
        return await self.connector.scan_once(self.publisher)

    def upload(self, provider: str) -> Path:
        folder = self.root / provider / "upload"
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def accepted_ids(self) -> list[str]:
        with self.engine.connect() as conn:
            return [r[0] for r in conn.execute(sa.text("SELECT source_record_id FROM accepted_records"))]


VARIANTS = {"csv": "batch-files.penalty-csv", "xlsx": "batch-files.penalty-xlsx", "xml": "batch-files.penalty-xml"}


def make_harness(tmp_path: Path, **options: Any) -> Harness:
    """The production ingest path (publisher, SQL store, durable connector state) on SQLite."""
    root = tmp_path / "exchange"
    root.mkdir()
    engine = create_engine_for(f"sqlite:///{tmp_path / 'gateway.sqlite'}")
    init_schema(engine)
    catalog = load_catalog(MAPPINGS)
    publisher = Publisher(ingestor=Ingestor(), mappings={"batch": {v: catalog[m] for v, m in VARIANTS.items()}},
                          store=SqlGatewayStore(engine, WorkingCalendar()), routes=lambda _kind: ("data-centre",))
    config = BatchFilesConnector.Config.model_validate({"exchange_root": str(root), **options})
    connector = BatchFilesConnector("batch", config, ConnectorContext(state=SqlConnectorState(engine, "batch")))
    return Harness(engine, publisher, connector, root)


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    h = make_harness(tmp_path)
    yield h
    await asyncio.to_thread(h.engine.dispose)


def drop_sample(h: Harness, provider: str, base: str, ext: str) -> None:
    for suffix in (ext, "ok"):
        shutil.copy(BATCH / f"{base}.{suffix}", h.upload(provider) / f"{base}.{suffix}")


def drop(upload: Path, name: str, data: bytes, *, rows: int, sha: str | None = None) -> None:
    (upload / name).write_bytes(data)
    digest = sha or hashlib.sha256(data).hexdigest()
    (upload / (name.rsplit(".", 1)[0] + ".ok")).write_bytes(f"{name}|{rows}|{digest}\r\n".encode())


def result_of(h: Harness, provider: str, base: str) -> str:
    return (h.root / provider / "result" / f"{base}.result.csv").read_bytes().decode("gbk")


async def test_the_bad_batch_sample_produces_exactly_the_expected_result_file(harness: Harness) -> None:
    base = f"{TONGLU}_XZCF_20250612_002"
    drop_sample(harness, TONGLU, base, "csv")
    assert await harness.scan() == 1
    produced = (harness.root / TONGLU / "result" / f"{base}.result.csv").read_bytes()
    assert produced == (BATCH / f"{base}.result.csv").read_bytes()
    assert sorted(harness.accepted_ids()) == ["CF3301222025000131", "CF3301222025000134", "CF3301222025000137"]
    archived = list((harness.root / TONGLU / "archive").rglob("*"))
    assert {p.name for p in archived if p.is_file()} == {f"{base}.csv", f"{base}.ok"}
    assert not any((harness.root / TONGLU / "upload").iterdir())
    assert not any((harness.root / TONGLU / "processing").iterdir())


class FlakyStore(SqlGatewayStore):
    """Refuses the writes whose numbers are in ``failing`` (1-based), before writing anything."""

    def __init__(self, engine: Engine, failing: set[int]) -> None:
        super().__init__(engine, WorkingCalendar())
        self.failing = failing
        self.calls = 0

    def write(self, envelope: Any, outcomes: Any, routes: Any) -> None:
        self.calls += 1
        if self.calls in self.failing:
            raise StoreUnavailable("the store is down (test)")
        super().write(envelope, outcomes, routes)


async def test_chunks_refused_by_the_store_in_flight_are_published_again_in_order(tmp_path: Path) -> None:
    # Chunks of 3 rows, two in flight: the 2nd and 4th writes fail (and with them any chunk
    # judged with their rows in view); the file still ends exactly as the contract says.
    h = make_harness(tmp_path, chunk_rows=3, store_retry_s=0.01)
    store = FlakyStore(h.engine, {2, 4})
    h.publisher = Publisher(ingestor=Ingestor(), mappings=h.publisher._mappings, store=store,
                            routes=lambda _kind: ("data-centre",))
    base = f"{TONGLU}_XZCF_20250612_002"
    drop_sample(h, TONGLU, base, "csv")
    try:
        assert await h.scan() == 1
    finally:
        await asyncio.to_thread(h.engine.dispose)
    assert store.calls >= 5  # both refusals happened, and were written again
    produced = (h.root / TONGLU / "result" / f"{base}.result.csv").read_bytes()
    assert produced == (BATCH / f"{base}.result.csv").read_bytes()
    assert sorted(h.accepted_ids()) == ["CF3301222025000131", "CF3301222025000134", "CF3301222025000137"]


async def test_valid_csv_xlsx_and_xml_samples_are_all_accepted(harness: Harness) -> None:
    drop_sample(harness, TONGLU, f"{TONGLU}_XZCF_20250612_001", "csv")
    drop_sample(harness, CHUNAN, f"{CHUNAN}_XZCF_20250612_001", "xlsx")
    drop_sample(harness, XIHU, f"{XIHU}_XZCF_20250620_001", "xml")
    assert await harness.scan() == 3
    assert len(harness.accepted_ids()) == 20 + 5 + 3
    for provider, base in ((TONGLU, f"{TONGLU}_XZCF_20250612_001"), (CHUNAN, f"{CHUNAN}_XZCF_20250612_001"),
                           (XIHU, f"{XIHU}_XZCF_20250620_001")):
        lines = result_of(harness, provider, base).split("\r\n")
        assert lines[0] == "行号,处罚行为编号,处理状态,错误代码,错误信息"
        assert all(",accepted," in line for line in lines[1:-1]), lines
    xml_lines = result_of(harness, XIHU, f"{XIHU}_XZCF_20250620_001").split("\r\n")
    assert xml_lines[1].startswith("1,") and len(xml_lines) == 5


async def test_a_data_file_without_its_marker_is_not_taken(harness: Harness) -> None:
    base = f"{TONGLU}_XZCF_20250612_001"
    shutil.copy(BATCH / f"{base}.csv", harness.upload(TONGLU))
    assert await harness.scan() == 0
    assert (harness.upload(TONGLU) / f"{base}.csv").exists()
    assert harness.accepted_ids() == []


@pytest.mark.parametrize(("change", "code"), [("rows", "F001"), ("sha", "F002")])
async def test_a_file_whose_marker_does_not_match_is_refused_and_nothing_is_ingested(
        harness: Harness, change: str, code: str) -> None:
    base = f"{TONGLU}_XZCF_20250612_001"
    data = (BATCH / f"{base}.csv").read_bytes()
    drop(harness.upload(TONGLU), f"{base}.csv", data, rows=21 if change == "rows" else 20,
         sha="0" * 64 if change == "sha" else None)
    assert await harness.scan() == 1
    assert harness.accepted_ids() == []
    assert result_of(harness, TONGLU, base).split("\r\n")[1].startswith(f"0,,rejected,{code},")
    failed = harness.root / TONGLU / "failed"
    assert (failed / f"{base}.csv").exists()
    assert (failed / f"{base}.csv.reason.txt").read_text(encoding="utf-8").startswith(code)


async def test_a_truncated_file_is_refused_with_f002(harness: Harness) -> None:
    base = f"{TONGLU}_XZCF_20250612_001"
    full = (BATCH / f"{base}.csv").read_bytes()
    drop(harness.upload(TONGLU), f"{base}.csv", full[: len(full) // 2], rows=20,
         sha=hashlib.sha256(full).hexdigest())
    await harness.scan()
    assert harness.accepted_ids() == []
    assert ",F002," in result_of(harness, TONGLU, base)


def zip_bomb() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("xl/worksheets/sheet1.xml", b"0" * (300 * 1024 * 1024))
    return buffer.getvalue()


@pytest.mark.timeout(120)
async def test_hostile_files_are_refused_with_a_reason_and_harm_nothing_else(harness: Harness) -> None:
    up = harness.upload(TONGLU)
    drop(up, f"{TONGLU}_XZCF_20250612_010.xlsx", zip_bomb(), rows=1)
    bomb = ('<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;">]>'
            "<DataPackage><Header/><Records><Record><XDRMC>&b;</XDRMC></Record></Records></DataPackage>")
    drop(up, f"{TONGLU}_XZCF_20250612_011.xml", bomb.encode(), rows=1)
    # a marker naming a path outside its folder
    outside = harness.root / "victim.csv"
    outside.write_text("keep me", encoding="utf-8")
    (up / f"{TONGLU}_XZCF_20250612_012.csv").write_bytes(b"x")
    (up / f"{TONGLU}_XZCF_20250612_012.ok").write_bytes(b"../../victim.csv|1|" + b"0" * 64 + b"\r\n")
    (up / "evil_name.ok").write_bytes(b"evil_name.csv|1|" + b"0" * 64)
    drop_sample(harness, TONGLU, f"{TONGLU}_XZCF_20250612_001", "csv")  # a good neighbour
    await harness.scan()
    assert sorted(harness.connector.refused) == [
        (f"{TONGLU}_XZCF_20250612_010", "F003"), (f"{TONGLU}_XZCF_20250612_011", "F003"),
        (f"{TONGLU}_XZCF_20250612_012", "F005"), ("evil_name", "F005")]
    assert outside.read_text(encoding="utf-8") == "keep me"
    assert len(harness.accepted_ids()) == 20
    assert "疑似压缩炸弹" in result_of(harness, TONGLU, f"{TONGLU}_XZCF_20250612_010")
    assert "DTD" in result_of(harness, TONGLU, f"{TONGLU}_XZCF_20250612_011")
    assert not any((harness.root / TONGLU / "upload").iterdir())


async def test_a_symlinked_data_file_is_refused_without_reading_its_target(harness: Harness, tmp_path: Path) -> None:
    secret = tmp_path / "secret.csv"
    secret.write_bytes((BATCH / f"{TONGLU}_XZCF_20250612_001.csv").read_bytes())
    up = harness.upload(TONGLU)
    (up / f"{TONGLU}_XZCF_20250612_013.csv").symlink_to(secret)
    (up / f"{TONGLU}_XZCF_20250612_013.ok").write_bytes(b"x|1|" + b"0" * 64)
    await harness.scan()
    assert harness.connector.refused == [(f"{TONGLU}_XZCF_20250612_013", "F005")]
    assert secret.exists() and harness.accepted_ids() == []


async def test_a_name_redropped_with_other_content_is_f006_and_the_same_content_is_not_ingested_twice(
        harness: Harness) -> None:
    base = f"{TONGLU}_XZCF_20250612_002"
    drop_sample(harness, TONGLU, base, "csv")
    await harness.scan()
    drop_sample(harness, TONGLU, base, "csv")
    await harness.scan()
    assert harness.connector.refused == []
    assert len(harness.accepted_ids()) == 3
    data = (BATCH / f"{base}.csv").read_bytes().replace(b"3000", b"3001")
    result = harness.root / TONGLU / "result" / f"{base}.result.csv"
    first_result = result.read_bytes()
    drop(harness.upload(TONGLU), f"{base}.csv", data, rows=8)
    await harness.scan()
    assert harness.connector.refused == [(base, "F006")]
    # The refusal is the name's result now; the per-row result of the file processed under it is kept.
    assert ",rejected,F006," in result.read_bytes().decode("gbk")
    kept = [p for p in result.parent.iterdir() if p.name.startswith(f"{base}.result.") and p != result]
    assert len(kept) == 1 and re.fullmatch(rf"{base}\.result\.\d{{14}}\.csv", kept[0].name)
    assert kept[0].read_bytes() == first_result


async def test_a_utf8_bom_csv_gets_its_result_in_utf8_with_bom(harness: Harness) -> None:
    base = f"{TONGLU}_XZCF_20250612_020"
    text = (BATCH / f"{TONGLU}_XZCF_20250612_002.csv").read_bytes().decode("gbk")
    drop(harness.upload(TONGLU), f"{base}.csv", b"\xef\xbb\xbf" + text.encode("utf-8"), rows=8)
    await harness.scan()
    produced = (harness.root / TONGLU / "result" / f"{base}.result.csv").read_bytes()
    expected = (BATCH / f"{TONGLU}_XZCF_20250612_002.result.csv").read_bytes().decode("gbk")
    assert produced == b"\xef\xbb\xbf" + expected.encode("utf-8")


async def test_a_missing_required_column_is_f004(harness: Harness) -> None:
    base = f"{TONGLU}_XZCF_20250612_021"
    text = (BATCH / f"{TONGLU}_XZCF_20250612_001.csv").read_bytes().decode("gbk")
    drop(harness.upload(TONGLU), f"{base}.csv", text.replace("处罚机关统一社会信用代码", "备用").encode("gbk"), rows=20)
    await harness.scan()
    assert ",F004,表头缺少必需列：处罚机关统一社会信用代码" in result_of(harness, TONGLU, base)
    assert harness.accepted_ids() == []
