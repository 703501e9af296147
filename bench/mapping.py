"""Map + validate throughput on one core, for penalty and inspection records.

Source records are the ministry SOAP samples (full penalty and inspection records), cloned with
distinct keys into pages of 500 so every record gets its own id; each page goes through the same
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
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from connectors.codecs import decode
from gateway.envelope import Envelope
from gateway.ingest import Ingestor
from gateway.memory_index import MemoryRecordIndex
from mapping.compiler import CompiledMapping, load_mapping

ROOT = Path(__file__).resolve().parent.parent
SOAP = ROOT / "config" / "samples" / "ministry-soap"
PAGE_SIZE = 500


def source_records(sample: str) -> list[dict[str, Any]]:
    tree = decode("soap", (SOAP / sample).read_bytes())
    records = tree["return"]["records"]["record"]
    return records if isinstance(records, list) else [records]


def pages(records: list[dict[str, Any]], key_fields: tuple[str, ...], total: int) -> list[dict[str, Any]]:
    out, page = [], []
    for i in range(total):
        clone = copy.deepcopy(records[i % len(records)])
        for key in key_fields:
            clone[key] = f"{clone[key]}-{i:07d}"
        page.append(clone)
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
