"""Two gateway runtimes watching one exchange directory: every file is taken by exactly one of them.

Each runtime has its own store (so duplicate detection cannot hide a file processed twice) and both
deliver to one data centre. Files are claimed by lock and atomic rename (``claim``): the runtimes
race for the same files, in the same order, and each file must end up archived once, ingested by
one runtime only, with every row in ``ex_penalty`` once.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import importlib.util
import io
import sqlite3
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from gateway.runtime import Runtime
from gateway.settings import Settings
from tests.conftest import MAPPINGS, ROOT

pytestmark = pytest.mark.integration
FILES = 6
ROWS = 150


def bench_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_batch_file", ROOT / "bench" / "batch_file.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def count(db: Path, sql: str) -> int:
    with sqlite3.connect(db, timeout=10) as conn:
        return int(conn.execute(sql).fetchone()[0])


def runtime_for(bench: ModuleType, work: Path, exchange: Path, datacentre: Path) -> Runtime:
    work.mkdir()
    config: dict[str, Any] = bench.gateway_config(work, exchange, chunk_rows=50, max_rows=ROWS)
    config["mappings_dir"] = str(MAPPINGS)
    config["connectors"][0]["options"]["poll_interval_s"] = 0.02
    config["adapters"][0]["options"]["url"] = f"sqlite:///{datacentre}"
    return Runtime(Settings.model_validate(config))


async def test_two_runtimes_on_one_exchange_directory_take_each_file_once(tmp_path: Path) -> None:
    bench = bench_module()
    exchange = tmp_path / "exchange"
    upload = exchange / bench.PROVIDER / "upload"
    upload.mkdir(parents=True)
    datacentre = tmp_path / "datacentre.sqlite"
    names = write_files(bench, upload)
    first = runtime_for(bench, tmp_path / "a", exchange, datacentre)
    second = runtime_for(bench, tmp_path / "b", exchange, datacentre)
    await first.start()
    await second.start()
    try:
        archive = exchange / bench.PROVIDER / "archive"
        async with asyncio.timeout(45):
            while len(list(archive.rglob("*.csv"))) < FILES or \
                    await asyncio.to_thread(_delivered, datacentre) < FILES * ROWS:
                await asyncio.sleep(0.05)
    finally:
        await second.stop()
        await first.stop()

    taken = [r.assembly.connectors["batch-files"].processed for r in (first, second)]  # type: ignore[attr-defined]
    assert sorted(taken[0] + taken[1]) == sorted(names)  # each file by one runtime, none twice
    assert taken[0] and taken[1], "both runtimes should have raced for the files"
    accepted = sum(count(tmp_path / side / "gateway.sqlite", "SELECT count(*) FROM accepted_records")
                   for side in ("a", "b"))
    assert accepted == FILES * ROWS
    assert count(datacentre, "SELECT count(*) FROM ex_penalty") == FILES * ROWS
    assert count(datacentre, "SELECT count(DISTINCT record_unique_identity) FROM ex_penalty") == FILES * ROWS
    assert sorted(p.name for p in archive.rglob("*.csv")) == sorted(names)
    assert not list(upload.iterdir())
    assert not list((exchange / bench.PROVIDER / "failed").iterdir())


def _delivered(datacentre: Path) -> int:
    if not datacentre.exists():
        return 0
    try:
        return count(datacentre, "SELECT count(*) FROM ex_penalty")
    except sqlite3.OperationalError:  # the table is created at the first delivery
        return 0


def write_files(bench: ModuleType, upload: Path) -> list[str]:
    """FILES GBK CSVs of ROWS rows each, every row of its own, each with its ``.ok`` marker."""
    header, _ = bench.sample_rows()
    names = []
    for i in range(FILES):
        name = f"{bench.PROVIDER}_XZCF_20250612_{i + 1:03d}.csv"
        buffer = io.StringIO(newline="")
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow(header)
        writer.writerows(bench.generated_rows(ROWS, first=i * ROWS))
        data = buffer.getvalue().encode("gbk")
        (upload / name).write_bytes(data)
        marker = f"{name}|{ROWS}|{hashlib.sha256(data).hexdigest()}\r\n".encode("ascii")
        (upload / name).with_suffix(".ok").write_bytes(marker)
        names.append(name)
    return names
