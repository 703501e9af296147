"""A gateway mapping batch files in worker processes (``ingest.map_processes``): from the exchange
directory to the data centre, every row once, and the result files as the gateway's own process
writes them."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from gateway.runtime import Runtime
from gateway.settings import Settings
from tests.conftest import MAPPINGS
from tests.integration.test_batch_files_shared import FILES, ROWS, _delivered, bench_module, count, write_files

pytestmark = pytest.mark.integration


async def test_files_mapped_in_worker_processes_reach_the_data_centre_once(tmp_path: Path) -> None:
    bench = bench_module()
    exchange = tmp_path / "exchange"
    upload = exchange / bench.PROVIDER / "upload"
    upload.mkdir(parents=True)
    names = write_files(bench, upload)
    config: dict[str, Any] = bench.gateway_config(tmp_path, exchange, chunk_rows=40, max_rows=ROWS, map_processes=2)
    config["mappings_dir"] = str(MAPPINGS)
    config["ingest"]["map_min_records"] = 10  # every chunk of 40 rows goes to a worker
    config["connectors"][0]["options"]["poll_interval_s"] = 0.02
    runtime = Runtime(Settings.model_validate(config))
    await runtime.start()
    try:
        assert runtime.map_pool is not None and len(runtime.map_pool.pids()) == 2
        archive = exchange / bench.PROVIDER / "archive"
        datacentre = tmp_path / "datacentre.sqlite"
        async with asyncio.timeout(45):
            while len(list(archive.rglob("*.csv"))) < FILES or \
                    await asyncio.to_thread(_delivered, datacentre) < FILES * ROWS:
                await asyncio.sleep(0.05)
        workers = runtime.map_pool.pids()
        pool = runtime.map_pool
    finally:
        await runtime.stop()

    assert (pool.prepared, pool.left_to_caller) == (FILES * -(-ROWS // 40), 0)  # every chunk by a worker
    assert count(datacentre, "SELECT count(*) FROM ex_penalty") == FILES * ROWS
    assert count(datacentre, "SELECT count(DISTINCT record_unique_identity) FROM ex_penalty") == FILES * ROWS
    assert count(tmp_path / "gateway.sqlite", "SELECT count(*) FROM accepted_records") == FILES * ROWS
    results = exchange / bench.PROVIDER / "result"
    for name in names:
        lines = (results / name.replace(".csv", ".result.csv")).read_bytes().decode("gb18030").splitlines()
        assert lines[1:] == [f"{n},CF33012220{(n - 1) + i * ROWS:010d},accepted,," for n in range(1, ROWS + 1)
                             for i in [names.index(name)]]
    assert all(not Path(f"/proc/{pid}").exists() for pid in workers)  # stopped with the gateway
