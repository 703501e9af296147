"""The codec package's public surface: dispatch, formats, limits, JSON."""

from __future__ import annotations

from pathlib import Path

import pytest

import connectors.codecs as codecs_pkg
from connectors.codecs import FORMATS, DecodeLimits, decode
from gateway.errors import ConfigError, PayloadError

SAMPLES = Path(__file__).resolve().parents[2] / "config" / "samples"


def test_formats_are_the_documented_ones() -> None:
    assert set(FORMATS) == {"json", "csv", "xlsx", "xml", "soap", "hj212", "gb28181"}


def test_exported_members() -> None:
    for name in codecs_pkg.__all__:
        assert hasattr(codecs_pkg, name), name


def test_unknown_format_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown payload format"):
        decode("yaml", b"a: 1")


def test_unknown_limit_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="max_lines"):
        decode("json", b"{}", max_lines=3)


def test_limits_are_frozen_with_documented_defaults() -> None:
    limits = DecodeLimits()
    assert limits.max_bytes == 20 * 1024 * 1024
    assert limits.max_rows == 50_000
    with pytest.raises(AttributeError):
        limits.max_bytes = 1  # type: ignore[misc]


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_checks_max_bytes_first(fmt: str) -> None:
    # Garbage that would fail parsing: the size check must answer before the parser sees it.
    with pytest.raises(PayloadError) as caught:
        decode(fmt, b"\xff" * 101, max_bytes=100)
    assert caught.value.code == "PAYLOAD_TOO_LARGE"


def test_limits_object_and_overrides_combine() -> None:
    with pytest.raises(PayloadError) as caught:
        decode("json", b"[1, 2, 3]", limits=DecodeLimits(max_bytes=1000), max_bytes=5)
    assert caught.value.code == "PAYLOAD_TOO_LARGE"
    assert decode("json", b"[1, 2, 3]", limits=DecodeLimits(max_bytes=1000)) == [1, 2, 3]


# --- json ---------------------------------------------------------------------------------------


def test_json_sample_keeps_numbers_and_structure() -> None:
    tree = decode("json", (SAMPLES / "iot-mqtt" / "telemetry-dust.json").read_bytes())
    assert tree["deviceId"] == "YC3301220000312"
    assert tree["ts"] == 1749522660000
    assert isinstance(tree["metrics"], list) and tree["metrics"][0]["code"]


def test_json_top_level_array_is_a_list() -> None:
    assert decode("json", b'[{"a": 1}, {"a": 2.5}]') == [{"a": 1}, {"a": 2.5}]


def test_json_bom_is_tolerated() -> None:
    assert decode("json", b'\xef\xbb\xbf{"k": "\xe4\xb8\xad"}') == {"k": "中"}


def test_json_malformed_has_line_and_column() -> None:
    with pytest.raises(PayloadError) as caught:
        decode("json", b'{\n  "a": 1,\n}')
    assert caught.value.code == "MALFORMED"
    assert caught.value.location == "line 2, column 9"  # orjson points at the trailing comma


def test_json_invalid_utf8_is_an_encoding_error() -> None:
    with pytest.raises(PayloadError) as caught:
        decode("json", '{"名称": "中文"}'.encode("gbk"))
    assert caught.value.code == "ENCODING"


def test_json_deep_nesting_is_refused() -> None:
    with pytest.raises(PayloadError) as caught:
        decode("json", b"[" * 5000 + b"]" * 5000)
    assert caught.value.code == "MALFORMED"


def test_json_refuses_a_non_utf8_encoding_option() -> None:
    with pytest.raises(PayloadError):
        decode("json", b"{}", encoding="gbk")
