"""Map + validate throughput on one core, for penalty and inspection records.

Source records are the ministry SOAP samples (full penalty and inspection records: a company, a
natural person, an update and a deletion), cloned into pages of 500 with distinct keys, and with
dates, times and fines spread over a year so that every record is a different one; each page goes through the same
path as production ingest (mapping, gateway fields, validation with the cross-field rules,
record id, duplicate check against the accepted-record index). Run by hand:

    .venv/bin/python bench/mapping.py [--records 20000]

Figures print as JSON on the last line.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

# `python bench/mapping.py` puts bench/ first on the path, where this file would shadow the
# `mapping` package: drop it, so the imports below find the project's packages.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from connectors.codecs import decode  # noqa: E402
from gateway.envelope import Envelope  # noqa: E402
from gateway.ingest import Ingestor  # noqa: E402
from gateway.memory_index import MemoryRecordIndex  # noqa: E402
from mapping.compiler import CompiledMapping, load_mapping  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SOAP = ROOT / "config" / "samples" / "ministry-soap"
PAGE_SIZE = 500
DATETIME_FIELDS = ("JCSJ", "TBSJ", "GXSJ")
DATE_FIELDS = ("LASJ", "CFJDRQ", "JASJ")


def source_records(sample: str) -> list[dict[str, Any]]:
    tree = decode("soap", (SOAP / sample).read_bytes())
    records = tree["return"]["records"]["record"]
    return records if isinstance(records, list) else [records]


def vary(record: dict[str, Any], i: int, key_fields: tuple[str, ...]) -> dict[str, Any]:
    """A distinct, still valid record: its own keys, and times and amounts that differ as real ones do."""
    clone = copy.deepcopy(record)
    for key in key_fields:
        clone[key] = f"{clone[key]}-{i:07d}"
    shift = timedelta(days=i % 365, seconds=(i * 7919) % 86400)
    for name in DATETIME_FIELDS:
        if clone.get(name):  # yyyyMMddHHmmss: move back in time, keeping the order between fields
            clone[name] = (datetime.strptime(clone[name], "%Y%m%d%H%M%S") - shift).strftime("%Y%m%d%H%M%S")
    for name in DATE_FIELDS:
        if clone.get(name):
            clone[name] = (datetime.strptime(clone[name], "%Y%m%d") - shift).strftime("%Y%m%d")
    if clone.get("FKJE"):
        clone["FKJE"] = f"{1000 + (i * 37) % 200000}.{i % 100:02d}"
    return clone


def pages(records: list[dict[str, Any]], key_fields: tuple[str, ...], total: int) -> list[dict[str, Any]]:
    out, page = [], []
    for i in range(total):
        page.append(vary(records[i % len(records)], i, key_fields))
        if len(page) == PAGE_SIZE:
            out.append({"return": {"records": {"record": page}}})
            page = []
    if page:
        out.append({"return": {"records": {"record": page}}})
    return out


def measure(mapping: CompiledMapping, payloads: list[dict[str, Any]], rounds: int) -> dict[str, Any]:
    best = float("inf")
    statuses: dict[str, int] = {}
    total = sum(len(p["return"]["records"]["record"]) for p in payloads)
    for _ in range(rounds):
        ingestor, index = Ingestor(), MemoryRecordIndex()
        statuses = {}
        started = time.perf_counter()
        for payload in payloads:
            envelope = Envelope(connector="bench", payload=payload, received_at=datetime.now(UTC))
            for outcome in ingestor.evaluate(mapping, envelope, index):
                index.remember(outcome)
                statuses[outcome.status] = statuses.get(outcome.status, 0) + 1
        best = min(best, time.perf_counter() - started)
    return {"records": total, "seconds": round(best, 4), "records_per_s": round(total / best), "outcomes": statuses}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20_000, help="records per kind")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core
    mappings = ROOT / "config" / "mappings"
    penalty = measure(load_mapping(mappings / "ministry-soap.penalty.yaml"),
                      pages(source_records("query-penalties-response-page1.xml"), ("CFBH", "CFJDSWH"), args.records),
                      args.rounds)
    inspection = measure(load_mapping(mappings / "ministry-soap.inspection.yaml"),
                         pages(source_records("query-inspections-response-page1.xml"), ("JCBH",), args.records),
                         args.rounds)
    print(f"penalty:    {penalty}")
    print(f"inspection: {inspection}")
    both = (penalty["records"] + inspection["records"]) / (penalty["seconds"] + inspection["seconds"])
    print(json.dumps({"records_per_s": round(both), "penalty_records_per_s": penalty["records_per_s"],
                      "inspection_records_per_s": inspection["records_per_s"], "cores": 1,
                      "records_per_kind": args.records}))


if __name__ == "__main__":
    main()
