"""Kill -9 the gateway while it ingests a batch file; after a restart every row is in ex_penalty once.

A real ``python -m gateway.cli run`` subprocess with the batch-file connector watching a temporary
exchange directory and the data-centre adapter on SQLite. The row count defaults to 2,000 to keep
the suite fast; ``BATCH_FILES_KILL_ROWS=100000`` runs the issue's 100,000-row case.

The first gateway is held mid-file rather than raced: a trigger the test adds to the gateway's
store refuses accepted records past ``HELD_AT_ROWS``, so the connector's next chunk fails as "store
unavailable" and is retried, with the checkpoint at ``HELD_AT_ROWS + 1``, until the kill. (Polling
for a checkpoint past a third of the file missed it on a loaded machine: 2,000 rows go from there
to the end, where the checkpoint is cleared, in ~0.1 s, and the test then waited for its timeout.)
The trigger is dropped before the restart. The delivery lease is short: a batch the killed gateway
had claimed and not yet written is claimed again by the restarted one after it (default 60 s).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import httpx
import pytest

from tests.conftest import MAPPINGS, ROOT, free_port

pytestmark = pytest.mark.integration
ROWS = int(os.environ.get("BATCH_FILES_KILL_ROWS", "2000"))
MAP_PROCESSES = int(os.environ.get("BATCH_FILES_KILL_MAP_PROCESSES", "1"))  # chunks mapped in a worker
CHUNK_ROWS = 500
# Whole chunks, past a third of the file: the first gateway stores these rows and no more.
HELD_AT_ROWS = (ROWS // 3 // CHUNK_ROWS + 1) * CHUNK_ROWS
DELIVERY_LEASE_S = 5
TIMEOUT_S = max(120, ROWS // 100)


def bench_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_batch_file", ROOT / "bench" / "batch_file.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def start_gateway(config: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", "gateway.cli", "run", "-c", str(config)], cwd=ROOT,
                                stdout=out, stderr=subprocess.STDOUT)


def query(db: Path, sql: str) -> list[tuple[object, ...]]:
    if not db.exists():
        return []
    with contextlib.closing(sqlite3.connect(db, timeout=10)) as conn:
        try:
            return conn.execute(sql).fetchall()
        except sqlite3.OperationalError:  # tables not created yet
            return []


def execute(db: Path, sql: str) -> None:
    with contextlib.closing(sqlite3.connect(db, timeout=30)) as conn, conn:
        conn.execute(sql)


def hold_ingest_at(gateway_db: Path, rows: int) -> None:
    """From ``rows`` accepted records on, the store refuses more (the publish fails and is retried)."""
    execute(gateway_db, "CREATE TRIGGER test_hold_ingest BEFORE INSERT ON accepted_records"
                        f" WHEN (SELECT count(*) FROM accepted_records) >= {rows}"
                        " BEGIN SELECT RAISE(ABORT, 'held by the test'); END")


def release_ingest(gateway_db: Path) -> None:
    execute(gateway_db, "DROP TRIGGER test_hold_ingest")


def checkpoint_row(gateway_db: Path) -> int:
    rows = query(gateway_db, "SELECT value FROM connector_state WHERE key LIKE 'file:%'")
    return int(json.loads(str(rows[0][0]))["next_row"]) if rows else 0


def is_serving(port: int) -> bool:
    """The API answers: the runtime has started (store migrated, connectors running)."""
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def wait_for(predicate: Callable[[], bool], timeout_s: float, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        assert proc.poll() is None, log.read_text(encoding="utf-8", errors="replace")[-3000:]
        time.sleep(0.1)
    raise AssertionError(f"timed out; log tail: {log.read_text(encoding='utf-8', errors='replace')[-3000:]}")


def children_of(pid: int) -> list[int]:
    """The processes ``pid`` started (Linux /proc), without their own children."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(child) for child in (task / "children").read_text().split()]
    return found


@pytest.mark.timeout(TIMEOUT_S)
def test_a_gateway_killed_mid_file_resumes_and_every_row_reaches_the_data_centre_once(tmp_path: Path) -> None:
    assert ROWS // 3 < HELD_AT_ROWS < ROWS
    bench = bench_module()
    exchange = tmp_path / "exchange"
    upload = exchange / bench.PROVIDER / "upload"
    upload.mkdir(parents=True)
    outgoing = tmp_path / "outgoing"  # written here, dropped into upload/ once the gateway is held
    outgoing.mkdir()
    written = bench.write_batch_file(outgoing, ROWS)
    data = upload / written.name
    config = bench.gateway_config(tmp_path, exchange, chunk_rows=CHUNK_ROWS, max_rows=ROWS,
                                  map_processes=MAP_PROCESSES)
    config["mappings_dir"] = str(MAPPINGS)
    port = free_port()
    config["api"] = {"host": "127.0.0.1", "port": port}
    config["delivery"] = {"lease_s": DELIVERY_LEASE_S}
    config_path = tmp_path / "gateway.yaml"
    config_path.write_text(json.dumps(config), encoding="utf-8")
    gateway_db, dc_db, log = tmp_path / "gateway.sqlite", tmp_path / "datacentre.sqlite", tmp_path / "gateway.log"

    first = start_gateway(config_path, log)
    try:
        wait_for(lambda: is_serving(port), 0.25 * TIMEOUT_S, first, log)
        hold_ingest_at(gateway_db, HELD_AT_ROWS)
        os.rename(written, data)
        os.rename(written.with_suffix(".ok"), data.with_suffix(".ok"))  # the marker last, as a bureau does
        wait_for(lambda: checkpoint_row(gateway_db) > ROWS // 3, 0.25 * TIMEOUT_S, first, log)
        workers = children_of(first.pid)  # the map workers and multiprocessing's resource tracker
        spawned = [pid for pid in workers if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()]
        assert len(spawned) == MAP_PROCESSES
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    # The map workers (and the tracker) end with the gateway that started them: their pipes close.
    deadline = time.monotonic() + 10
    while any(Path(f"/proc/{pid}").exists() for pid in workers):
        assert time.monotonic() < deadline, f"map workers outlived the gateway: {workers}"
        time.sleep(0.05)
    killed_at = checkpoint_row(gateway_db)
    assert killed_at == HELD_AT_ROWS + 1, "the checkpoint went past the rows the store accepted"
    assert query(gateway_db, "SELECT count(*) FROM accepted_records")[0][0] == HELD_AT_ROWS
    assert (exchange / bench.PROVIDER / "processing" / data.name).exists()

    release_ingest(gateway_db)
    second = start_gateway(config_path, log)
    try:
        result = exchange / bench.PROVIDER / "result" / f"{data.stem}.result.csv"
        wait_for(lambda: result.exists() and int(str(query(dc_db, "SELECT count(*) FROM ex_penalty")[0][0])) >= ROWS,
                 0.4 * TIMEOUT_S, second, log)
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(20)

    # cd_id is the record id; record_unique_identity the row's 处罚行为编号
    ids = query(dc_db, "SELECT record_unique_identity, count(*), count(DISTINCT cd_id) FROM ex_penalty"
                       " GROUP BY record_unique_identity")
    assert len(ids) == ROWS
    assert all(n == 1 and distinct == 1 for _, n, distinct in ids)
    assert query(gateway_db, "SELECT count(*) FROM accepted_records")[0][0] == ROWS
    lines = result.read_bytes().decode("gbk").split("\r\n")
    assert len(lines) == ROWS + 2  # header, one line per row, the final CRLF
    assert all(line.split(",")[2] == "accepted" for line in lines[1:-1])
    assert [int(line.split(",")[0]) for line in lines[1:-1]] == list(range(1, ROWS + 1))
    assert list((exchange / bench.PROVIDER / "archive").rglob(data.name))
