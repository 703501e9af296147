"""SOAP poll connector: options, time windows, the cursor format, fault translation, the call gate."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from connectors.codecs import DEFAULT_LIMITS, SoapFault
from connectors.soap.config import SoapPollConfig
from connectors.soap.faults import decode_answer, fault_error
from connectors.soap.throttle import CallGate
from connectors.soap.window import BEIJING, decode_cursor, encode_cursor, next_window
from gateway.errors import ConfigError, PayloadError, PermanentError, SourceUnavailable
from tests.conftest import SAMPLES

SOAP = SAMPLES / "ministry-soap"
BASE: dict[str, Any] = {"wsdl": "http://x/?wsdl", "username": "u", "password": "secret-pw",
                        "operations": [{"name": "QueryPenalties", "variant": "penalty"}],
                        "start_time": "2025-06-01T00:00:00"}


def config(**overrides: Any) -> SoapPollConfig:
    return SoapPollConfig.model_validate({**BASE, **overrides})


def test_defaults_follow_the_contract_and_the_password_is_never_shown() -> None:
    c = config()
    assert (c.overlap_s, c.max_calls_per_min, c.max_concurrency, c.page_size) == (300, 60, 2, 200)
    assert c.start_time.tzinfo is BEIJING  # naive times are Beijing time, as the source's
    assert "secret-pw" not in repr(c) and "secret-pw" not in str(c.model_dump())


@pytest.mark.parametrize(("overrides", "path"), [
    ({"page_size": 201}, "page_size"), ({"page_size": 0}, "page_size"),
    ({"window_s": 7 * 86400 + 1}, "window_s"), ({"overlap_s": 86400}, ""),
    ({"rate_limited_backoff_s": 10}, "rate_limited_backoff_s"),
    ({"operations": [{"name": "QueryPenalties", "variant": "p"}] * 2}, ""),
    ({"operations": []}, "operations"), ({"retries": 3}, "retries"),
    ({"operations": [{"name": "Query Penalties", "variant": "p"}]}, "operations.0.name"),
])
def test_bad_options_are_refused_with_their_path(overrides: dict[str, Any], path: str) -> None:
    with pytest.raises(ValidationError) as caught:
        config(**overrides)
    assert path in {".".join(map(str, e["loc"])) for e in caught.value.errors()}


def at(text: str) -> datetime:
    return datetime.strptime(text, "%Y%m%d%H%M%S").replace(tzinfo=BEIJING)


def test_the_first_window_starts_at_start_time_and_is_capped_by_now() -> None:
    w = next_window(None, start_time=at("20250601000000"), now=at("20250601120000"), window_s=86400, overlap_s=300)
    assert w is not None and (w.start_text, w.end_text) == ("20250601000000", "20250601120000")


def test_later_windows_start_overlap_s_before_the_cursor() -> None:
    w = next_window(at("20250602000000"), start_time=at("20250101000000"), now=at("20250630000000"),
                    window_s=86400, overlap_s=300)
    assert w is not None and (w.start_text, w.end_text) == ("20250601235500", "20250602235500")


def test_no_window_when_the_cursor_is_ahead_of_now() -> None:
    assert next_window(at("20250602000000"), start_time=at("20250101000000"), now=at("20250601000000"),
                       window_s=86400, overlap_s=300) is None


def test_windows_are_whole_seconds_in_beijing_time() -> None:
    utc_now = datetime(2025, 6, 1, 4, 0, 0, 999_999, tzinfo=UTC)  # 12:00:00.999999 in Beijing
    w = next_window(None, start_time=at("20250601110000"), now=utc_now, window_s=86400, overlap_s=0)
    assert w is not None and (w.start_text, w.end_text) == ("20250601110000", "20250601120000")
    assert w.end.microsecond == 0


def test_the_cursor_round_trips_and_garbage_means_none() -> None:
    moment = at("20250603164512")
    assert decode_cursor(encode_cursor(moment)) == moment
    assert encode_cursor(moment) == "2025-06-03T16:45:12+08:00"
    assert decode_cursor(None) is None and decode_cursor("yesterday") is None and decode_cursor(5) is None


@pytest.mark.parametrize(("code", "faultcode", "kind"), [
    ("1001", "wsse:FailedAuthentication", PermanentError), ("1002", "soap:Client", PermanentError),
    ("2001", "soap:Client", PermanentError), ("3001", "soap:Server", SourceUnavailable),
    ("5000", "soap:Server", SourceUnavailable), (None, "wsse:FailedAuthentication", PermanentError),
    (None, "soap:Client", PermanentError), (None, "soap:Server", SourceUnavailable),
])
def test_faults_become_the_gateway_error_the_supervisor_acts_on(code: str | None, faultcode: str,
                                                                 kind: type[Exception]) -> None:
    error = fault_error(SoapFault(faultcode, "text", code, "msg"), where="QueryPenalties p1", rate_limited_backoff_s=60)
    assert type(error) is kind
    if code == "3001":
        assert isinstance(error, SourceUnavailable) and (error.retry_after_s or 0) >= 60


def test_the_contract_fault_bytes_are_a_permanent_error_naming_the_code() -> None:
    data = (SOAP / "fault-invalid-credentials.xml").read_bytes()
    with pytest.raises(PermanentError, match="1001") as caught:
        decode_answer(500, data, where="QueryInspections p1", limits=DEFAULT_LIMITS, rate_limited_backoff_s=60)
    assert "账号" in str(caught.value)


@pytest.mark.parametrize("status", [502, 503, 500])
def test_proxy_error_pages_are_transient(status: int) -> None:
    page = b"<html><body><h1>Service Unavailable</h1></body></html>"
    with pytest.raises(SourceUnavailable):
        decode_answer(status, page, where="p1", limits=DEFAULT_LIMITS, rate_limited_backoff_s=60)


def test_http_status_without_soap_fault() -> None:
    with pytest.raises(PermanentError):
        decode_answer(401, b"", where="p1", limits=DEFAULT_LIMITS, rate_limited_backoff_s=60)
    with pytest.raises(ConfigError):
        decode_answer(404, b"<html/>", where="p1", limits=DEFAULT_LIMITS, rate_limited_backoff_s=60)


def test_a_success_status_with_a_hostile_body_is_refused() -> None:
    hostile = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>'
    with pytest.raises(PayloadError):
        decode_answer(200, hostile, where="p1", limits=DEFAULT_LIMITS, rate_limited_backoff_s=60)


async def test_the_gate_spaces_call_starts_and_bounds_concurrency() -> None:
    clock = [0.0]
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        clock[0] += seconds

    gate = CallGate(max_calls_per_min=60, max_concurrency=2, clock=lambda: clock[0], sleep=sleep)
    for _ in range(3):
        async with gate.call():
            pass
    assert waits == [1.0, 1.0]  # 60 a minute: one start a second


async def test_the_gate_lets_no_more_than_max_concurrency_in() -> None:
    gate = CallGate(max_calls_per_min=60000, max_concurrency=2)
    inside, peak = 0, 0
    release = asyncio.Event()

    async def call() -> None:
        nonlocal inside, peak
        async with gate.call():
            inside += 1
            peak = max(peak, inside)
            await release.wait()
            inside -= 1

    tasks = [asyncio.create_task(call()) for _ in range(4)]
    for _ in range(20):
        await asyncio.sleep(0.001)
    assert peak == 2
    release.set()
    await asyncio.gather(*tasks)
