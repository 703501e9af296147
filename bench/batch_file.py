"""Batch-file connector throughput: a GBK CSV of N penalty rows, from the exchange directory to the
data centre's ex_penalty table, through the real path (BatchFilesConnector -> Publisher ->
SqlGatewayStore -> DeliveryWorker -> DataCentreAdapter, all on SQLite in a temporary folder).

    .venv/bin/python bench/batch_file.py [--rows 1000000] [--chunk-rows 1000] [--batch-size 1000]

Chunks of 1,000 rows and data-centre batches of 1,000 records (the connector's ``chunk_rows``, the
adapter's ``batch_size``): a file's rows go through fewer transactions than at 500 (1,000,000 rows:
3,715 rows/s against 3,197, peak 256 MB against 210, on a 2-core machine).

Rows are the 20 valid rows of the 桐庐县 sample, each with its own 处罚行为编号, 文书号, dates and
amounts. Figures print as ONE JSON object on the last line: rows_per_s (file rows from start to
the last row in ex_penalty), ingest_rows_per_s (until the file is archived), peak_rss_mb
(ru_maxrss of this process, which runs the whole gateway), cpu_s and rows_per_cpu_s (CPU time of
the process over the same span: comparable between runs on a loaded machine).
With --delivery-processes N, this process only ingests and N `sgw run --role delivery` processes
deliver from the same SQLite stores; cpu_s then counts them too, and delivery_peak_rss_mb gives
their peaks. --pg puts the gateway's store and the data centre on the local PostgreSQL and
--redis-outbox the outbox on the local Redis (the production stores; their servers' CPU is not in
cpu_s).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import hashlib
import io
import json
import os
import resource
import socket
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

# `python bench/batch_file.py` puts bench/ first on the path, where bench/mapping.py would shadow
# the `mapping` package: drop it.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # tests.pg and tests.redis_keys, for --pg and --redis-outbox
    sys.path.insert(0, str(ROOT))
from tests.pg import SERVER as PG_URL  # noqa: E402
from tests.pg import execute, schema_url  # noqa: E402
from tests.redis_keys import REDIS_URL, drop_keys  # noqa: E402

SAMPLE = ROOT / "config" / "samples" / "batch-files" / "113301220025023382_XZCF_20250612_001.csv"
PROVIDER = "113301220025023382"


def sample_rows() -> tuple[list[str], list[list[str]]]:
    text = SAMPLE.read_bytes().decode("gb18030")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    return rows[0], rows[1:]


def generated_rows(count: int, *, first: int = 0) -> Iterator[list[str]]:
    """Distinct valid rows: own 处罚行为编号 / 文书号 / 检查行为编号, dates over a year, varied fines."""
    header, templates = sample_rows()
    col = {name: i for i, name in enumerate(header)}
    start = date(2024, 6, 1)
    for n in range(first, first + count):
        row = list(templates[n % len(templates)])
        row[col["处罚行为编号"]] = f"CF33012220{n:010d}"
        row[col["检查行为编号"]] = f"JC33012220{n:010d}"
        row[col["处罚决定书文号"]] = f"桐市监罚〔2025〕B{n}号"
        day = start + timedelta(days=n % 360)
        row[col["处罚决定日期"]] = f"{day.year}/{day.month}/{day.day}"
        if row[col["罚款金额（元）"]]:
            row[col["罚款金额（元）"]] = str(1000 + n % 9000)
        yield row


def write_batch_file(upload: Path, rows: int, *, seq: int = 1, day: str = "20250612") -> Path:
    """A GBK CRLF CSV of ``rows`` generated rows and its ``.ok`` marker (written last)."""
    header, _ = sample_rows()
    base = f"{PROVIDER}_XZCF_{day}_{seq:03d}"
    data = upload / f"{base}.csv"
    digest = hashlib.sha256()
    with data.open("wb") as out:
        buffer = io.StringIO(newline="")
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow(header)
        for i, row in enumerate(generated_rows(rows), 1):
            writer.writerow(row)
            if i % 5000 == 0 or i == rows:
                chunk = buffer.getvalue().encode("gbk")
                digest.update(chunk)
                out.write(chunk)
                buffer.seek(0)
                buffer.truncate()
        rest = buffer.getvalue().encode("gbk")
        digest.update(rest)
        out.write(rest)
    (upload / f"{base}.ok").write_bytes(f"{data.name}|{rows}|{digest.hexdigest()}\r\n".encode("ascii"))
    return data


def gateway_config(work: Path, exchange: Path, *, chunk_rows: int, max_rows: int,
                   batch_size: int = 500, map_processes: int = 0) -> dict[str, Any]:
    return {
        "ingest": {"map_processes": map_processes},
        "mappings_dir": str(ROOT / "config" / "mappings"),
        "stores": {"database_url": f"sqlite:///{work / 'gateway.sqlite'}"},
        "connectors": [{
            "id": "batch-files", "type": "batch_files",
            "mappings": {"csv": "batch-files.penalty-csv", "xlsx": "batch-files.penalty-xlsx",
                         "xml": "batch-files.penalty-xml"},
            "options": {"exchange_root": str(exchange), "poll_interval_s": 0.2, "chunk_rows": chunk_rows,
                        "max_rows": max_rows, "max_bytes": 2 * 1024**3},
        }],
        "adapters": [{"id": "data-centre", "type": "data_centre", "batch_size": batch_size,
                      "options": {"url": f"sqlite:///{work / 'datacentre.sqlite'}", "create_tables": True}}],
        "routing": [{"kinds": ["*"], "adapters": ["data-centre"]}],
    }


def cpu_s() -> float:
    """CPU seconds of this process (all threads): a figure less sensitive to a loaded machine."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def peak_rss_mb_of(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def children_cpu_s(pids: list[int]) -> float:
    """CPU seconds (user + system) the given processes have used so far."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


async def delivery_instance(work: Path, config: dict[str, Any]) -> asyncio.subprocess.Process:
    """`sgw run --role delivery` on the same stores: the adapters' workers in a process of their own."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    path = work / "delivery.json"
    path.write_text(json.dumps({**config, "api": {"port": port}, "logging": {"level": "WARNING"}}),
                    encoding="utf-8")
    return await asyncio.create_subprocess_exec(sys.executable, "-m", "gateway.cli", "run", "--config", str(path),
                                                "--role", "delivery", cwd=ROOT,
                                                env={k: v for k, v in os.environ.items() if not k.startswith("SGW_")})


def production_stores(config: dict[str, Any], tag: str, *, pg: bool, redis_outbox: bool) -> str:
    """``config`` with the gateway's store and the data centre on the local PostgreSQL (schemas
    ``<tag>_store`` / ``<tag>_dc``) and/or the outbox on the local Redis (prefix ``<tag>``);
    returns the URL to count the data centre's rows at."""
    if redis_outbox:
        config["stores"].update(redis_url=REDIS_URL, redis_prefix=tag)
    if not pg:
        return str(config["adapters"][0]["options"]["url"])
    execute(f'CREATE SCHEMA "{tag}_store"')
    config["stores"]["database_url"] = schema_url(f"{tag}_store")
    config["adapters"][0]["options"] = {"url": PG_URL, "db_schema": f"{tag}_dc", "create_tables": True}
    return schema_url(f"{tag}_dc")


def drop_production_stores(tag: str) -> None:
    execute(f'DROP SCHEMA IF EXISTS "{tag}_store" CASCADE; DROP SCHEMA IF EXISTS "{tag}_dc" CASCADE')
    drop_keys(f"{tag}*")


async def run_bench(rows: int, chunk_rows: int, batch_size: int, delivery_processes: int = 0, *,
                    pg: bool = False, redis_outbox: bool = False, map_processes: int = 0) -> dict[str, Any]:
    from gateway.gc_tuning import tune_for_throughput
    from gateway.runtime import Runtime
    from gateway.settings import Settings, with_roles
    from gateway.stores.db import create_engine_for

    with tempfile.TemporaryDirectory(prefix="sgw-bench-batch-") as tmp:
        work = Path(tmp)
        exchange = work / "exchange"
        upload = exchange / PROVIDER / "upload"
        upload.mkdir(parents=True)
        t_gen = time.perf_counter()
        data = write_batch_file(upload, rows)
        gen_s = time.perf_counter() - t_gen
        size_mb = data.stat().st_size / 1024**2
        config = gateway_config(work, exchange, chunk_rows=chunk_rows, max_rows=rows, batch_size=batch_size,
                                map_processes=map_processes)
        tag = f"bench_batch_{os.getpid()}"
        dc_url = production_stores(config, tag, pg=pg, redis_outbox=redis_outbox)
        settings = Settings.model_validate(config)
        children = []
        if delivery_processes:  # this process ingests, they deliver
            settings = with_roles(settings, ("ingest",))
            children = [await delivery_instance(work, config) for _ in range(delivery_processes)]
        runtime = Runtime(settings)
        tune_for_throughput()  # as `sgw run` does
        dc = create_engine_for(dc_url)
        archived = exchange / PROVIDER / "archive"
        start = time.perf_counter()
        cpu_start = cpu_s() + children_cpu_s([c.pid for c in children])
        await runtime.start()
        map_pids = list(runtime.map_pool.pids()) if runtime.map_pool is not None else []
        cpu_start += children_cpu_s(map_pids)  # their start (imports) counted from here on
        ingest_s = None
        delivered = 0
        try:
            while True:
                await asyncio.sleep(0.5)
                if any(child.returncode is not None for child in children):
                    raise RuntimeError("a delivery process exited (its error is above)")
                if ingest_s is None and archived.exists() and any(archived.rglob("*.csv")):
                    ingest_s = time.perf_counter() - start
                if ingest_s is not None:
                    delivered = await asyncio.to_thread(_count, dc)
                    if delivered >= rows:
                        break
        finally:
            total_s = time.perf_counter() - start
            used_cpu_s = cpu_s() + children_cpu_s([c.pid for c in children] + map_pids) - cpu_start
            map_rss_mb = [peak_rss_mb_of(pid) for pid in map_pids]
            await runtime.stop()
            children_rss_mb = [peak_rss_mb_of(c.pid) for c in children]
            for child in children:
                child.terminate()
                await child.wait()
            dc.dispose()
            if pg or redis_outbox:
                drop_production_stores(tag)
    return {"rows": rows, "file_mb": round(size_mb, 1), "generate_s": round(gen_s, 1),
            "ingest_s": round(ingest_s or 0, 1), "total_s": round(total_s, 1),
            "ingest_rows_per_s": round(rows / ingest_s) if ingest_s else 0,
            "rows_per_s": round(delivered / total_s), "delivered": delivered,
            "cpu_s": round(used_cpu_s, 1), "rows_per_cpu_s": round(delivered / used_cpu_s) if used_cpu_s else 0,
            "peak_rss_mb": round(peak_rss_mb(), 1), "delivery_processes": delivery_processes,
            "delivery_peak_rss_mb": children_rss_mb, "map_processes": map_processes,
            "map_peak_rss_mb": map_rss_mb,
            "stores": ("postgresql" if pg else "sqlite") + (" + redis outbox" if redis_outbox else "")}


def _count(engine: Any) -> int:
    import sqlalchemy as sa

    with engine.connect() as conn:
        try:
            return int(conn.execute(sa.text("SELECT count(*) FROM ex_penalty")).scalar_one())
        except (sa.exc.OperationalError, sa.exc.ProgrammingError):  # the table is not there yet
            return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--chunk-rows", type=int, default=1000, help="the batch-file connector's chunk_rows")
    parser.add_argument("--batch-size", type=int, default=1000, help="the data-centre adapter's batch size")
    parser.add_argument("--delivery-processes", type=int, default=0, help=(
        "deliver from this many `sgw run --role delivery` processes on the same SQLite stores (this "
        "process then only ingests); 0: the embedded gateway, all in this process"))
    parser.add_argument("--pg", action="store_true", help=(
        f"the gateway's store and the data centre on PostgreSQL ({PG_URL}, schemas of their own, dropped after)"))
    parser.add_argument("--redis-outbox", action="store_true", help=f"the outbox on Redis Streams ({REDIS_URL})")
    parser.add_argument("--map-processes", type=int, default=0, help=(
        "ingest.map_processes: map and check the file's chunks in this many worker processes"))
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run_bench(args.rows, args.chunk_rows, args.batch_size, args.delivery_processes,
                                           pg=args.pg, redis_outbox=args.redis_outbox,
                                           map_processes=args.map_processes))))


if __name__ == "__main__":
    main()
