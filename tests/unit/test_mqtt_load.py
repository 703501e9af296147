"""The load generator's encoding and acknowledgement counting, without a broker: the remaining length
against the MQTT 3.1.1 spec's own table (2.2.3), a PUBLISH byte for byte, and the PUBACK reader that
must refuse anything else rather than miscount the window."""

from __future__ import annotations

import pytest

from tests.peers.mqtt_load import (
    MqttProtocolError,
    QosOnePublisher,
    publish_packet,
    remaining_length,
    utf8_field,
)


@pytest.mark.parametrize(("n", "encoded"), [
    (0, "00"), (127, "7F"), (128, "80 01"), (16_383, "FF 7F"), (16_384, "80 80 01"),
    (2_097_151, "FF FF 7F"), (2_097_152, "80 80 80 01"), (268_435_455, "FF FF FF 7F"),
])
def test_remaining_length_matches_the_spec_table(n: int, encoded: str) -> None:
    assert remaining_length(n) == bytes.fromhex(encoded)


def test_publish_packet_is_qos_one_with_id_and_payload_intact() -> None:
    packet = publish_packet(utf8_field("a/b"), 0xBEEF, b"\x00\xff" * 100)
    assert packet == b"\x32" + b"\xcf\x01" + b"\x00\x03a/b" + b"\xbe\xef" + b"\x00\xff" * 100  # 5 + 2 + 200 = 207


def publisher_with_buffer(data: bytes) -> QosOnePublisher:
    """A publisher holding ``data`` as received bytes, no socket: ``_take_acks`` reads only the buffer."""
    publisher = object.__new__(QosOnePublisher)
    publisher._buffer = data
    return publisher


def test_take_acks_counts_whole_pubacks_and_keeps_a_partial_one() -> None:
    publisher = publisher_with_buffer(b"\x40\x02\x00\x01" + b"\x40\x02\x00\x02" + b"\x40\x02")
    assert publisher._take_acks() == 2
    assert publisher._buffer == b"\x40\x02"


@pytest.mark.parametrize("packet", [
    b"\x50\x02\x00\x01",  # PUBREC: a QoS 2 answer
    b"\xd0\x00\x40\x02",  # PINGRESP, then the start of a PUBACK
    b"\x40\x03\x00\x01",  # a PUBACK with the wrong remaining length
])
def test_take_acks_refuses_anything_but_a_puback(packet: bytes) -> None:
    publisher = publisher_with_buffer(b"\x40\x02\x00\x01" + packet)
    with pytest.raises(MqttProtocolError, match="expected PUBACK"):
        publisher._take_acks()
