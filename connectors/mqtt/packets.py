"""MQTT PUBLISH packets read straight from the bytes the socket gave.

paho parses each packet through a handful of method calls, a ``Properties`` object (MQTT 5), an
``MQTTMessage`` and its callback machinery: most of the connector's CPU per message. Here the run
of complete QoS 0/1 PUBLISH packets at the start of a buffer is read in one loop, straight into
``Incoming`` tuples. Anything else ends the run and is left to paho, which keeps the connection,
the session and the keepalive: other packet types, QoS 2 (paho's PUBREC/PUBREL state), a packet the
buffer cuts off, one paho would refuse as malformed, a topic alias (empty topic) or a topic that is
not UTF-8 (paho's handling of those is kept as it is).
"""

from __future__ import annotations

from typing import NamedTuple

_PUBLISH = 0x30
_MAX_LENGTH_SHIFT = 21  # a remaining length has at most 4 bytes of 7 bits


class Incoming(NamedTuple):
    """One PUBLISH as the event loop gets it (a tuple: ~1 µs cheaper per message than a dataclass)."""

    topic: str
    payload: bytes
    mid: int  # the packet id; 0 for QoS 0
    qos: int
    retain: bool
    received_at: float  # epoch s, when the bytes were read


def read_publishes(data: bytes, pos: int, mqtt5: bool, received_at: float, out: list[Incoming]) -> int:
    """Append the complete QoS 0/1 PUBLISH packets from ``data[pos:]`` to ``out``, in order, and
    return the position of the first byte not taken (``len(data)`` when all of it was)."""
    end = len(data)
    new = tuple.__new__
    while pos < end:
        header = data[pos]
        qos = (header >> 1) & 3
        if header & 0xF0 != _PUBLISH or qos > 1:
            return pos
        i, length, shift = pos + 1, 0, 0
        while True:  # remaining length: 7 bits a byte, least significant first
            if i >= end or shift > _MAX_LENGTH_SHIFT:
                return pos
            byte = data[i]
            i += 1
            length |= (byte & 0x7F) << shift
            if byte < 0x80:
                break
            shift += 7
        body_end = i + length
        if body_end > end or length < 2:
            return pos
        topic_end = i + 2 + ((data[i] << 8) | data[i + 1])
        at = topic_end + 2 if qos else topic_end
        if topic_end == i + 2 or at > body_end:
            return pos  # a topic alias (empty topic), or no room for the packet id
        mid = (data[topic_end] << 8) | data[topic_end + 1] if qos else 0
        if mqtt5:  # the properties (none we need: no topic alias was allowed), their length first
            properties, shift = 0, 0
            while True:
                if at >= body_end or shift > _MAX_LENGTH_SHIFT:
                    return pos
                byte = data[at]
                at += 1
                properties |= (byte & 0x7F) << shift
                if byte < 0x80:
                    break
                shift += 7
            at += properties
        if at > body_end:
            return pos
        try:
            topic = data[i + 2:topic_end].decode()
        except UnicodeDecodeError:
            return pos
        out.append(new(Incoming, (topic, data[at:body_end], mid, qos, header & 1 == 1, received_at)))
        pos = body_end
    return pos


def cut_short(data: bytes, pos: int, max_bytes: int) -> bool:
    """Whether ``data[pos:]`` begins a packet of at most ``max_bytes`` that it does not hold all of
    (the next read completes it). False for a malformed length: paho refuses that one."""
    end, i, length, shift = len(data), pos + 1, 0, 0
    while True:
        if i >= end:
            return True  # the length itself is cut
        if shift > _MAX_LENGTH_SHIFT:
            return False
        byte = data[i]
        i += 1
        length |= (byte & 0x7F) << shift
        if byte < 0x80:
            break
        shift += 7
    return i + length > end and i + length - pos <= max_bytes
