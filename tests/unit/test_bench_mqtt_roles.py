"""bench/mqtt.py with ``--ingest-processes 1``: the delivery process (this one) and the ingest instance
share one connector registry, and each seeds it from its own config file at start. The ingest
instance used to get an MQTT client id of its own, so the delivery process's seed changed the
connector: the ingest instance's registry watch rebuilt it in the middle of the burst with a clean
session, and the broker dropped what it had for the old client and what came before the new one
subscribed (1,000-5,000 of 30,000 messages never ingested, reported as lost by the outbox bench)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

from gateway.settings import load_settings
from gateway.stores import create_engine_for, init_schema
from gateway.stores.registry import SqlRegistry

ROOT = Path(__file__).resolve().parents[2]


def bench_mqtt() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_mqtt_under_test", ROOT / "bench" / "mqtt.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def seed(registry: SqlRegistry, config: dict[str, object], path: Path) -> int:
    """What ``Runtime.start`` seeds the registry with (the connectors are what a watch reacts to)."""
    path.write_text(json.dumps(config), encoding="utf-8")
    settings = load_settings(path, environ={})
    registry.seed([c.model_dump(mode="json") for c in settings.connectors], {},
                  [r.model_dump(mode="json") for r in settings.routing])
    return registry.revision()


def test_delivery_process_seed_leaves_the_single_ingest_instance_connector_alone(tmp_path: Path) -> None:
    bench = bench_mqtt()
    config = bench.gateway_config(tmp_path, bench.options("bt/", "t", 1883))
    instance = bench.ingest_instance(config, 0)
    engine = create_engine_for(f"sqlite:///{tmp_path / 'registry.sqlite'}")
    init_schema(engine)
    registry = SqlRegistry(engine)

    after_ingest = seed(registry, instance, tmp_path / "ingest-0.yaml")
    after_delivery = seed(registry, {**config, "roles": ["delivery"]}, tmp_path / "gateway.yaml")

    assert after_delivery == after_ingest  # nothing for the ingest instance's watch to rebuild
    assert instance["api"] != config.get("api")  # its own API port all the same


def test_instances_of_a_shared_subscription_seed_the_same_connector(tmp_path: Path) -> None:
    bench = bench_mqtt()
    config = bench.gateway_config(tmp_path, bench.options("bt/", "t", 1883))
    config["connectors"][0]["options"]["share_group"] = "sgwt"
    engine = create_engine_for(f"sqlite:///{tmp_path / 'registry.sqlite'}")
    init_schema(engine)
    registry = SqlRegistry(engine)

    first = seed(registry, bench.ingest_instance(config, 0), tmp_path / "ingest-0.yaml")
    revisions = {seed(registry, bench.ingest_instance(config, 1), tmp_path / "ingest-1.yaml"),
                 seed(registry, {**config, "roles": ["delivery"]}, tmp_path / "gateway.yaml")}

    assert revisions == {first}
    assert bench.ingest_instance(config, 1)["instance_id"] == "ingest-1"  # the client id differs by it
