"""The gateway config of the sgw SUT, generated from the harness's environment (see README.md).

Prints the config file's path. Everything the harness gives (broker, topic filter, sink, client id,
run folder) comes from BENCH_*; the tuning knobs are SGWBENCH_* (defaults in sut.json).
"""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def env(name: str, default: str) -> str:
    return os.environ.get(name, default)


def topic_template(topic_filter: str) -> str:
    """devices/+/telemetry -> devices/{device_id}/telemetry (the connector's templates name levels)."""
    names = iter(["device_id"] + [f"level{i}" for i in range(2, 10)])
    levels = topic_filter.split("/")
    if "#" in levels:
        raise SystemExit(f"sgw SUT: topic filter {topic_filter!r}: '#' has no template form")
    return "/".join(f"{{{next(names)}}}" if level == "+" else level for level in levels)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def projection() -> dict[str, Any]:
    """The sink's record shape from the standard iot_reading (shared/bench/peer/README.md)."""
    return {
        "device_id": "device_id",
        "observed_at": {"path": "observed_at", "convert": "utc"},
        "metrics": {"table": "factors", "key": "code", "value": "value", "convert": "number",
                    "names": {"a34004": "pm25", "LAeq": "noise_db"}},
        "subject_uscc": "supervised_object_uscc",
        "seq": {"path": "ext.seq", "convert": "number"},
        "t_pub": {"path": "ext.t_pub", "convert": "number"},
    }


def tuning() -> dict[str, Any]:
    """The connector's throughput options, when set (else the connector's own defaults apply)."""
    knobs = {"max_inflight": ("SGWBENCH_RECEIVE_MAX", int), "batch_max_messages": ("SGWBENCH_INGEST_BATCH", int),
             "batch_max_wait_s": ("SGWBENCH_INGEST_WAIT_S", float)}
    return {option: kind(os.environ[name]) for option, (name, kind) in knobs.items() if os.environ.get(name)}


def connectors(clients: int) -> list[dict[str, Any]]:
    client_id = env("BENCH_CLIENT_ID", "sgw-bench")
    shared = clients > 1
    out = []
    for n in range(1, clients + 1):
        out.append({
            "id": f"bench-mqtt-{n}",
            "type": "mqtt",
            "meta": {"provider_uscc": env("SGWBENCH_PROVIDER_USCC", "113301000025441678"),
                     "admin_division_code": env("SGWBENCH_DIVISION", "310115")},
            "mappings": {"telemetry-json": "bench.telemetry"},
            "options": {
                "client_id": f"{client_id}-{n}" if shared else client_id,
                "broker": {"host": env("BENCH_MQTT_HOST", "127.0.0.1"), "port": int(env("BENCH_MQTT_PORT", "1883")),
                           "protocol": env("SGWBENCH_PROTOCOL", "5")},
                "clean_start": True,
                "share_group": "sgw" if shared else None,
                "topics": [{"template": topic_template(env("BENCH_TOPIC_FILTER", "devices/+/telemetry")),
                            "codec": "json", "qos": int(env("BENCH_QOS", "1"))}],
                **tuning(),
            },
        })
    return out


def config(run_dir: Path) -> dict[str, Any]:
    return {
        "mappings_dir": str(HERE / "mappings"),
        "stores": {"database_url": f"sqlite:///{run_dir / 'gateway.sqlite'}"},
        "api": {"host": "127.0.0.1", "port": free_port()},
        "logging": {"level": env("SGWBENCH_LOG_LEVEL", "INFO"), "json_format": True},
        "delivery": {"linger_s": float(env("SGWBENCH_LINGER_S", "0.0"))},
        "connectors": connectors(int(env("SGWBENCH_CLIENTS", "1"))),
        "adapters": [{
            "id": "sink", "type": "http_post",
            "batch_size": int(env("SGWBENCH_DELIVERY_BATCH", "500")),
            "max_wait_s": float(env("SGWBENCH_DELIVERY_WAIT_S", "0.05")),
            "options": {"url": env("BENCH_SINK_URL", "http://127.0.0.1:18080/ingest"),
                        "max_records_per_request": int(env("SGWBENCH_DELIVERY_BATCH", "500")),
                        "projection": projection()},
        }],
        "routing": [{"kinds": ["iot_reading"], "adapters": ["sink"]}],
    }


def main() -> None:
    run_dir = Path(env("BENCH_RUN_DIR", ".")).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / "sgw-gateway.yaml"
    path.write_text(json.dumps(config(run_dir), indent=2), encoding="utf-8")  # JSON is YAML
    print(path)


if __name__ == "__main__":
    sys.exit(main())
