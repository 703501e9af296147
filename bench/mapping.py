"""Map + validate throughput on one core, for penalty and inspection records, and the CPU per record
of the two hot workloads.

Source records are the ministry SOAP samples (full penalty and inspection records: a company, a
natural person, an update and a deletion), cloned into pages of 500 with distinct keys, and with
dates, times and fines spread over a year so that every record is a different one; each page goes through the same
path as production ingest (mapping, gateway fields, validation with the cross-field rules,
record id, duplicate check against the accepted-record index). The hot workloads go the same way:
the batch-file penalty rows of bench/batch_file.py (GBK CSV through the csv codec, chunks of 500
with the connector's meta) and the JSON telemetry of bench/mqtt.py's simulated devices (one
message per envelope, and groups of 50 as the connector forms under load); their figures are CPU
microseconds per record (``time.process_time``, best round, with the gateway's gc settings),
steadier than rates on a shared machine. Run by hand:

    .venv/bin/python bench/mapping.py [--records 20000]

Figures print as JSON on the last line.
"""

from __future__ import annotations

import argparse
import copy
import csv
import io
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
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import orjson  # noqa: E402

from bench.batch_file import PROVIDER, generated_rows, sample_rows  # noqa: E402
from connectors.codecs import decode  # noqa: E402
from gateway.envelope import Envelope  # noqa: E402
from gateway.gc_tuning import tune_for_throughput  # noqa: E402
from gateway.ingest import Ingestor  # noqa: E402
from gateway.memory_index import MemoryRecordIndex  # noqa: E402
from mapping.compiler import CompiledMapping, load_mapping  # noqa: E402
from tests.peers import mqtt_devices  # noqa: E402

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


def batch_csv_envelopes(total: int) -> list[Envelope]:
    """Chunks of 500 generated penalty rows as the batch-file connector publishes them."""
    header, _ = sample_rows()
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(generated_rows(total))
    rows = decode("csv", buffer.getvalue().encode("gbk"))
    meta = {"file": f"{PROVIDER}_XZCF_20250612_001.csv", "file_mtime": "2025-06-12T17:31:02+08:00",
            "location": f"{PROVIDER}_XZCF_20250612_001.csv", "provider_uscc": PROVIDER, "file_kind": "XZCF",
            "variant": "csv"}
    received = datetime(2025, 6, 12, 9, 31, 40, tzinfo=UTC)
    return [Envelope(connector="batch-files", payload=rows[first:first + PAGE_SIZE], received_at=received,
                     records_inline=True,
                     meta={**meta, "row_offset": first, "row_numbers": list(range(first + 1, first + PAGE_SIZE + 1))})
            for first in range(0, len(rows), PAGE_SIZE)]


def telemetry_envelopes(total: int, group: int) -> list[Envelope]:
    """Simulated JSON telemetry, ``group`` messages per envelope, with the MQTT connector's meta."""
    received = datetime(2025, 6, 12, 9, 31, 40, tzinfo=UTC)
    out = []
    for first in range(0, total, group):
        payloads = []
        for n in range(first, min(first + group, total)):
            region, device = mqtt_devices.JSON_DEVICES[n % len(mqtt_devices.JSON_DEVICES)]
            payloads.append(orjson.loads(mqtt_devices.telemetry_json(
                device, mqtt_devices.BASE_TS_MS + n * 1000, msg_id=f"m{n}")))
        meta: dict[str, Any] = {"provider_uscc": "113301000025441678", "variant": "telemetry-json"}
        if group == 1:
            topic = f"iot/v1/{region}/{device}/telemetry"
            meta.update(region=region, device_id=device, topic=topic, location=f"topic {topic}")
        else:
            meta.update(location="topic iot/v1/+/+/telemetry")
        out.append(Envelope(connector="iot-mqtt", payload=payloads[0] if group == 1 else payloads,
                            received_at=received + timedelta(milliseconds=first), meta=meta,
                            records_inline=group != 1))
    return out


def cpu_us_per_record(mapping: CompiledMapping, envelopes: list[Envelope], rounds: int) -> float:
    """CPU microseconds per record of ingest's evaluation (warm: one round first), best round."""
    records = sum(len(e.payload) if isinstance(e.payload, list) else 1 for e in envelopes)
    ingestor, best = Ingestor(), float("inf")
    for round_no in range(rounds + 1):
        index = MemoryRecordIndex()
        started = time.process_time()
        for envelope in envelopes:
            for outcome in ingestor.evaluate(mapping, envelope, index):
                index.remember(outcome)
        if round_no:
            best = min(best, time.process_time() - started)
    return round(best / records * 1e6, 2)


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
    tune_for_throughput()  # as `sgw run` has it (after the rates above, comparable with earlier runs)
    csv_penalty = cpu_us_per_record(load_mapping(mappings / "batch-files.penalty-csv.yaml"),
                                    batch_csv_envelopes(args.records), args.rounds)
    telemetry = load_mapping(mappings / "iot-mqtt.telemetry-json.yaml")
    telemetry_one = cpu_us_per_record(telemetry, telemetry_envelopes(args.records, 1), args.rounds)
    telemetry_50 = cpu_us_per_record(telemetry, telemetry_envelopes(args.records, 50), args.rounds)
    print(f"penalty:    {penalty}")
    print(f"inspection: {inspection}")
    print(f"CPU µs per record: batch CSV penalty rows {csv_penalty}, MQTT telemetry {telemetry_one} "
          f"(one per envelope), {telemetry_50} (50 per envelope)")
    both = (penalty["records"] + inspection["records"]) / (penalty["seconds"] + inspection["seconds"])
    print(json.dumps({"records_per_s": round(both), "penalty_records_per_s": penalty["records_per_s"],
                      "inspection_records_per_s": inspection["records_per_s"], "cores": 1,
                      "records_per_kind": args.records, "batch_csv_penalty_cpu_us": csv_penalty,
                      "mqtt_telemetry_cpu_us": telemetry_one, "mqtt_telemetry_x50_cpu_us": telemetry_50}))


if __name__ == "__main__":
    main()
