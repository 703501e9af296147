"""HJ 212-2017 codec: framing, CRC, CP parsing, password masking and encoding."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors.codecs import decode, encode_hj212
from connectors.codecs.hj212 import crc16, mask_password
from gateway.errors import PayloadError

IOT = Path(__file__).resolve().parents[2] / "config" / "samples" / "iot-mqtt"


def _error(data: bytes) -> PayloadError:
    with pytest.raises(PayloadError) as caught:
        decode("hj212", data)
    return caught.value


def test_crc_matches_the_reference_packet_algorithm() -> None:
    # Appendix A CRC16_Checkout of a known segment (see shared/sources/tools/hj212.py).
    packet = (IOT / "hj212-2011-realtime-wastewater.txt").read_bytes().rstrip(b"\r\n")
    assert f"{crc16(packet[6:-4]):04X}" == "35C0"


def test_realtime_wastewater_sample() -> None:
    tree = decode("hj212", (IOT / "hj212-2011-realtime-wastewater.txt").read_bytes())
    assert {k: tree[k] for k in ("QN", "ST", "CN", "PW", "MN", "Flag", "DataTime")} == {
        "QN": "20250610100000123", "ST": "32", "CN": "2011", "PW": "***",
        "MN": "YR330111000001WS0001", "Flag": "5", "DataTime": "20250610100000",
    }
    assert tree["factors"][0] == {"code": "w00000", "Rtd": "12.6", "Flag": "N"}
    assert [f["code"] for f in tree["factors"]] == ["w00000", "w01018", "w21003", "w01001", "w21011"]
    assert tree["factors"][1]["Rtd"] == "48.3"
    assert tree["params"] == {"DataTime": "20250610100000"}
    assert "PNO" not in tree and "PNUM" not in tree


def test_minute_fluegas_sample_keeps_interval_values_and_flags() -> None:
    tree = decode("hj212", (IOT / "hj212-2051-minute-fluegas.txt").read_bytes())
    assert tree["CN"] == "2051" and tree["ST"] == "31"
    nox = next(f for f in tree["factors"] if f["code"] == "a21002")
    assert nox == {"code": "a21002", "Cou": "1.743", "Min": "39.6", "Avg": "42.0", "Max": "44.8", "Flag": "C"}
    assert tree["factors"][0]["Cou"] == "41520.0"
    assert len(tree["factors"]) == 7


def test_hourly_wastewater_sample() -> None:
    tree = decode("hj212", (IOT / "hj212-2061-hourly-wastewater.txt").read_bytes())
    assert tree["MN"] == "SW330111000003WS0001"
    assert tree["factors"][-1] == {"code": "w01001", "Min": "6.9", "Avg": "7.1", "Max": "7.3", "Flag": "N"}


def test_password_is_masked_in_tree_and_raw() -> None:
    data = (IOT / "hj212-2011-realtime-wastewater.txt").read_bytes()
    tree = decode("hj212", data)
    assert "123456" not in repr(tree)
    assert ";PW=***;" in tree["raw"]
    # The masked raw is a packet of its own: neither length nor CRC reveal the password.
    assert decode("hj212", tree["raw"].encode())["MN"] == tree["MN"]
    assert tree["raw"].replace("PW=***", "PW=123456")[6:-4] == data.decode().rstrip("\r\n")[6:-4]


def test_bad_crc_sample_is_refused() -> None:
    error = _error((IOT / "hj212-bad-crc.txt").read_bytes())
    assert error.code == "CRC"
    assert "35C0" in str(error)


def test_wrong_length_is_refused() -> None:
    data = (IOT / "hj212-2011-realtime-wastewater.txt").read_bytes().replace(b"##0256", b"##0255", 1)
    error = _error(data)
    assert error.code == "LENGTH"
    assert "255" in str(error) and "256" in str(error)


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "MALFORMED"),
        (b"QN=1;ST=32", "MALFORMED"),
        (b"##00ab" + b"x" * 10 + b"0000", "LENGTH"),
        (b"##0003abcZZZZ\r\n", "CRC"),
    ],
)
def test_broken_frames(data: bytes, code: str) -> None:
    assert _error(data).code == code


def _packet(segment: str) -> bytes:
    raw = segment.encode("latin-1")
    return b"##%04d" % len(raw) + raw + b"%04X\r\n" % crc16(raw)


@pytest.mark.parametrize(
    "segment",
    [
        "QN=1;ST=32;CN=2011;PW=1;MN=M;Flag=4;CP=&&DataTime=1",  # CP not closed
        "QN=1;ST=32;CN=2011;PW=1;MN=M;Flag=4",  # no CP
        "QN=1;ST=32;CN=2011;PW=1;Flag=4;CP=&&DataTime=1&&",  # no MN
        "QN=1;ST=32;CN=2011;PW=1;MN=M;MN=N;CP=&&DataTime=1&&",  # repeated head field
        "QN=1;ST=32;CN=2011;PW=1;MN=M;CP=&&a01-Rtd=1,a01-Rtd=2&&",  # repeated factor value
        "QN=1;ST=32;CN=2011;PW=1;MN=M;CP=&&DataTime&&",  # not key=value
        "QN;ST=32;CN=2011;PW=1;MN=M;CP=&&&&",
    ],
)
def test_structural_errors_are_malformed(segment: str) -> None:
    assert _error(_packet(segment)).code == "MALFORMED"


def test_non_ascii_packet_is_an_encoding_error() -> None:
    assert _error(_packet("QN=1;ST=32;CN=2011;PW=1;MN=M\xe9;CP=&&&&")).code == "ENCODING"


def test_new_password_parameter_is_masked_too() -> None:
    tree = decode("hj212", _packet("QN=1;ST=32;CN=1072;PW=old;MN=M;Flag=5;CP=&&NewPW=secret&&"))
    assert tree["params"] == {"NewPW": "***"}
    assert "secret" not in tree["raw"] and "old" not in tree["raw"]


def test_packetised_message_fields() -> None:
    segment = "QN=1;ST=32;CN=2011;PW=1;MN=M;Flag=5;PNUM=2;PNO=1;CP=&&DataTime=20250610100000&&"
    tree = decode("hj212", _packet(segment))
    assert (tree["PNUM"], tree["PNO"], tree["factors"]) == ("2", "1", [])


def test_encode_round_trips_every_sample() -> None:
    for name in ("2011-realtime-wastewater", "2051-minute-fluegas", "2061-hourly-wastewater"):
        data = (IOT / f"hj212-{name}.txt").read_bytes()
        tree = decode("hj212", data)
        assert encode_hj212({**tree, "PW": "123456"}).encode() == data


def test_encode_builds_a_valid_packet_from_fields() -> None:
    packet = encode_hj212({
        "QN": "20250610100000123", "ST": "31", "CN": "2011", "PW": "123456", "MN": "DEV1", "Flag": "4",
        "DataTime": "20250610100000",
        "factors": [{"code": "a34013", "Rtd": 8.6, "Flag": "N"}, {"code": "a21026", "Rtd": "21.3"}],
    })
    assert packet.startswith("##") and packet.endswith("\r\n")
    tree = decode("hj212", packet.encode())
    assert tree["DataTime"] == "20250610100000"
    assert tree["factors"] == [
        {"code": "a34013", "Rtd": "8.6", "Flag": "N"}, {"code": "a21026", "Rtd": "21.3"}
    ]


@pytest.mark.parametrize(
    "fields",
    [
        {"ST": "31", "CN": "2011", "PW": "1"},  # no MN
        {"ST": "31", "CN": "2011", "PW": "1;CN=9", "MN": "M"},
        {"ST": "31", "CN": "2011", "PW": "1", "MN": "M", "factors": [{"code": "a", "Rtd": "1,2"}]},
        {"ST": "31", "CN": "2011", "PW": "1", "MN": "M", "params": {"X": "x" * 10_000}},
    ],
)
def test_encode_refuses_what_cannot_be_framed(fields: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        encode_hj212(fields)


@pytest.mark.parametrize(("packet", "kept"), [
    (b"##0101QN=1;ST=32;CN=2011;PW=123456;MN=X;CP=&&DataTime=1&&ABCD",
     b"##0101QN=1;ST=32;CN=2011;PW=***;MN=X;CP=&&DataTime=1&&ABCD"),
    (b"##0101PW=secret;MN=X;CP=&&NewPW=next,PW=old;a=1&&", b"##0101PW=***;MN=X;CP=&&NewPW=***,PW=***;a=1&&"),
    (b"QN=1;MN=PW=;CP=&&&&", b"QN=1;MN=PW=;CP=&&&&"),  # PW= inside another value is not a password
])
def test_a_refused_packet_is_kept_with_its_passwords_masked(packet: bytes, kept: bytes) -> None:
    assert mask_password(packet) == kept
