"""http_post adapter: the projection to a target's shape, and HTTP answers as delivery results over a
small local server (a real socket)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import pytest
from aiohttp import web
from pydantic import ValidationError

from adapters.base import OutboundRecord
from adapters.http_sink.adapter import HttpPostAdapter, HttpPostConfig
from adapters.http_sink.projection import FieldRule, ProjectionError, TableRule, compile_projection, to_number, to_utc
from connectors.codecs import decode
from gateway.errors import ConfigError
from gateway.ingest import Ingestor
from gateway.registry import adapter_registry
from mapping.catalog import load_catalog
from mapping.examples import run_examples
from tests.conftest import ROOT, free_port

BENCH_MAPPINGS = ROOT / "bench" / "sut" / "sgw" / "mappings"

SINK_SHAPE: dict[str, Any] = {
    "device_id": "device_id",
    "observed_at": {"path": "observed_at", "convert": "utc"},
    "metrics": {"table": "factors", "convert": "number", "names": {"a34004": "pm25", "LAeq": "noise_db"}},
    "subject_uscc": "supervised_object_uscc",
    "seq": {"path": "ext.seq", "convert": "number"},
}


def reading(**changes: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "record_kind": "iot_reading", "record_id": "0b7c", "device_id": "ENV-0024", "command_code": "2011",
        "observed_at": "2026-11-22T10:00:01+08:00",
        "factors": [{"code": "a34004", "value": "160.1", "unit": "ug/m3"}, {"code": "LAeq", "value": "44.9"}],
        "supervised_object_uscc": "91310115714167048K", "ext": {"seq": 123, "t_pub": 1795352013073296},
    }
    record.update(changes)
    return record


def project(rules: dict[str, Any], record: dict[str, Any], **kw: Any) -> dict[str, Any]:
    config = HttpPostConfig(url="http://sink.example/", projection=rules, **kw)
    return compile_projection(config.projection, keep_absent=config.keep_absent)(record)


def test_the_sink_shape_from_a_standard_reading() -> None:
    assert project(SINK_SHAPE, reading()) == {
        "device_id": "ENV-0024", "observed_at": "2026-11-22T02:00:01Z", "metrics": {"pm25": 160.1, "noise_db": 44.9},
        "subject_uscc": "91310115714167048K", "seq": 123}


def test_rules_parse_to_their_models() -> None:
    config = HttpPostConfig(url="http://x/", projection=SINK_SHAPE)
    assert config.projection is not None
    assert config.projection["device_id"] == "device_id"
    assert isinstance(config.projection["observed_at"], FieldRule)
    assert isinstance(config.projection["metrics"], TableRule)
    with pytest.raises(ValidationError):
        HttpPostConfig(url="http://x/", projection={"a": {"path": "x", "convrt": "utc"}})
    with pytest.raises(ValidationError):
        HttpPostConfig(url="http://x/", projection={"a": {"path": "x..y"}})
    with pytest.raises(ValidationError):
        HttpPostConfig(url="ftp://x/")


def test_absent_values_are_left_out_or_null() -> None:
    rules = {"seq": "ext.seq", "lon": "lon", "deep": "ext.none.x", "metrics": {"table": "factors"}}
    assert project(rules, reading(ext=None, factors=None)) == {}
    assert project(rules, reading(ext=None, factors=None), keep_absent=True) == {
        "seq": None, "lon": None, "deep": None, "metrics": None}


def test_table_renames_keeps_or_drops_the_others() -> None:
    factors = [{"code": "a34004", "value": "1.50"}, {"code": "w01018", "value": "7"}, {"value": "9"}]
    assert project({"m": {"table": "factors", "names": {"a34004": "pm25"}}}, reading(factors=factors)) == {
        "m": {"pm25": "1.50", "w01018": "7"}}
    assert project({"m": {"table": "factors", "names": {"a34004": "pm25"}, "others": "drop", "convert": "number"}},
                   reading(factors=factors)) == {"m": {"pm25": 1.5}}


def test_no_projection_sends_the_record_as_it_is() -> None:
    assert compile_projection(None)(reading()) == reading()


def test_conversions() -> None:
    assert to_utc("2026-11-22T10:00:01+08:00") == "2026-11-22T02:00:01Z"
    assert to_utc("2026-11-22T10:00:01.250+08:00") == "2026-11-22T02:00:01.250000Z"
    assert to_utc("2026-11-22T10:00:01") == "2026-11-22T02:00:01Z"  # naive: Asia/Shanghai (the standard's rule)
    assert to_utc("2026-11-22T02:00:01Z") == "2026-11-22T02:00:01Z"
    assert to_number("160.1") == 160.1 and to_number("-7") == -7 and isinstance(to_number("7"), int)
    assert to_number("5000.00") == 5000.0 and to_number(3) == 3
    for bad in ("2026-11-22", "yesterday"):
        with pytest.raises(ProjectionError):
            to_utc(bad)
    for wrong in ("abc", "nan", "inf", True, [1]):
        with pytest.raises(ProjectionError):
            to_number(wrong)


def test_the_type_is_registered() -> None:
    plugin = adapter_registry().get("http_post")
    assert plugin.factory is HttpPostAdapter and plugin.config_model is HttpPostConfig
    with pytest.raises(ConfigError, match="http_post"):
        adapter_registry().get("http_posts")


def test_the_bench_mapping_golden_examples_pass() -> None:
    mapping = load_catalog(BENCH_MAPPINGS)["bench.telemetry"]
    assert mapping.examples
    assert [str(f) for f in run_examples(mapping, partial(Ingestor().check_mapped, mapping), decode=decode)] == []


# --- HTTP answers ------------------------------------------------------------------------------


@dataclass
class Sink:
    answers: list[tuple[int, dict[str, str]]] = field(default_factory=list)  # consumed one per request
    bodies: list[Any] = field(default_factory=list)
    peers: set[Any] = field(default_factory=set)
    headers: list[dict[str, str]] = field(default_factory=list)
    methods: list[str] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        self.methods.append(request.method)
        self.bodies.append(json.loads(await request.read()))
        self.headers.append(dict(request.headers))
        if request.transport is not None:
            self.peers.add(request.transport.get_extra_info("peername"))
        status, headers = self.answers.pop(0) if self.answers else (200, {})
        return web.json_response({"ok": status < 300}, status=status, headers=headers)


@pytest.fixture
async def sink() -> AsyncIterator[tuple[str, Sink]]:
    fake = Sink()
    app = web.Application()
    app.router.add_route("*", "/ingest", fake.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}/ingest", fake
    finally:
        await runner.cleanup()


def batch_of(n: int) -> list[OutboundRecord]:
    return [OutboundRecord(f"r{i}", "iot_reading", reading(ext={"seq": i})) for i in range(n)]


async def deliver(config: HttpPostConfig, batch: list[OutboundRecord]) -> list[tuple[str, str | None]]:
    adapter = HttpPostAdapter(config)
    try:
        results = await adapter.deliver(batch)
    finally:
        await adapter.close()
    assert [r.record_id for r in results] == [r.record_id for r in batch]
    return [(r.status, r.code) for r in results]


async def test_a_batch_is_posted_as_json_arrays_over_one_connection(sink: tuple[str, Sink]) -> None:
    url, fake = sink
    config = HttpPostConfig(url=url, projection=SINK_SHAPE, max_records_per_request=2, headers={"X-Tenant": "zj"},
                            bearer_token="t0ken")  # type: ignore[arg-type]
    assert await deliver(config, batch_of(5)) == [("delivered", "200")] * 5
    assert [[r["seq"] for r in body] for body in fake.bodies] == [[0, 1], [2, 3], [4]]
    assert fake.bodies[0][0]["metrics"] == {"pm25": 160.1, "noise_db": 44.9}
    assert len(fake.peers) == 1  # keep-alive
    assert fake.headers[0]["X-Tenant"] == "zj" and fake.headers[0]["Authorization"] == "Bearer t0ken"
    assert fake.headers[0]["Content-Type"] == "application/json"


@pytest.mark.parametrize(("status", "outcome"), [
    (201, ("delivered", "201")), (204, ("delivered", "204")),
    (500, ("retry", "TARGET_UNAVAILABLE")), (503, ("retry", "TARGET_UNAVAILABLE")),
    (429, ("retry", "TARGET_UNAVAILABLE")), (408, ("retry", "TARGET_UNAVAILABLE")),
    (400, ("failed", "HTTP_400")), (401, ("failed", "HTTP_401")), (404, ("failed", "HTTP_404")),
    (302, ("failed", "HTTP_302")),
])
async def test_the_status_decides_every_record_of_the_request(sink: tuple[str, Sink], status: int,
                                                              outcome: tuple[str, str]) -> None:
    url, fake = sink
    fake.answers.append((status, {"Location": url} if status == 302 else {}))
    assert await deliver(HttpPostConfig(url=url), batch_of(3)) == [outcome] * 3
    assert len(fake.bodies) == 1


async def test_after_a_refusal_the_rest_is_not_sent(sink: tuple[str, Sink]) -> None:
    url, fake = sink
    fake.answers.extend([(200, {}), (503, {"Retry-After": "7"})])
    adapter = HttpPostAdapter(HttpPostConfig(url=url, max_records_per_request=2))
    try:
        results = await adapter.deliver(batch_of(6))
    finally:
        await adapter.close()
    assert [r.status for r in results] == ["delivered"] * 2 + ["retry"] * 4
    assert {r.retry_after_s for r in results[2:]} == {7.0}
    assert len(fake.bodies) == 2


async def test_413_halves_the_request(sink: tuple[str, Sink]) -> None:
    url, fake = sink
    fake.answers.extend([(413, {}), (200, {}), (413, {}), (413, {}), (200, {})])
    assert await deliver(HttpPostConfig(url=url), batch_of(3)) == [
        ("delivered", "200"), ("failed", "HTTP_413"), ("delivered", "200")]
    assert [len(b) for b in fake.bodies] == [3, 1, 2, 1, 1]


async def test_a_record_the_projection_cannot_convert_fails_alone(sink: tuple[str, Sink]) -> None:
    url, fake = sink
    batch = batch_of(2)
    batch.insert(1, OutboundRecord("bad", "iot_reading", reading(observed_at="2026-11-22")))
    assert await deliver(HttpPostConfig(url=url, projection=SINK_SHAPE), batch) == [
        ("delivered", "200"), ("failed", "PROJECTION"), ("delivered", "200")]
    assert [[r["seq"] for r in body] for body in fake.bodies] == [[0, 1]]


async def test_put(sink: tuple[str, Sink]) -> None:
    url, fake = sink
    assert await deliver(HttpPostConfig(url=url, method="PUT"), batch_of(1)) == [("delivered", "200")]
    assert fake.methods == ["PUT"] and fake.bodies[0][0]["ext"] == {"seq": 0}


async def test_an_unreachable_target_is_a_retry() -> None:
    config = HttpPostConfig(url=f"http://127.0.0.1:{free_port()}/x", timeout_s=5)
    assert await deliver(config, batch_of(2)) == [("retry", "TARGET_UNAVAILABLE")] * 2
