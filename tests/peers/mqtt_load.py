"""A lean MQTT 3.1.1 load generator: QoS 1 PUBLISH packets written straight to a socket.

The benches' simulated devices. paho-mqtt costs ~0.2 ms of CPU per QoS 1 message on the publishing
side (its packet objects, locks and callbacks), as much as the gateway spends ingesting and
delivering it; on a two-core machine the devices took a core from the gateway they were measuring.
Real devices publish from their own hardware, so the load generator should cost next to nothing:
this one encodes each PUBLISH in a few microseconds, writes many in one ``sendall``, and counts
PUBACKs, keeping at most ``max_inflight`` messages unacknowledged (the broker's window) the way a
client library does. It speaks only what a publishing device needs (CONNECT, PUBLISH QoS 1,
PUBACK, DISCONNECT); the tests that exercise wills, retained messages or reconnects use paho
(``mqtt_devices.Publisher``).
"""

from __future__ import annotations

import select
import socket
import struct
import time
from collections.abc import Iterable, Iterator

CONNACK, PUBACK = 0x20, 0x40
WRITE_AT_MOST = 200  # messages per sendall: large enough to amortise the call, small enough to pace


class MqttProtocolError(RuntimeError):
    """The broker answered something a QoS 1 publisher does not expect."""


def remaining_length(n: int) -> bytes:
    """MQTT's variable-length integer (1-4 bytes, 7 bits each, high bit = more)."""
    out = bytearray()
    while True:
        n, digit = divmod(n, 128)
        out.append(digit | (0x80 if n else 0))
        if not n:
            return bytes(out)


def utf8_field(text: str) -> bytes:
    raw = text.encode()
    return struct.pack("!H", len(raw)) + raw


def connect_packet(client_id: str, keepalive_s: int = 60) -> bytes:
    body = utf8_field("MQTT") + bytes((4, 0x02)) + struct.pack("!H", keepalive_s) + utf8_field(client_id)
    return b"\x10" + remaining_length(len(body)) + body


def publish_packet(topic: bytes, packet_id: int, payload: bytes) -> bytes:
    """PUBLISH, QoS 1, no retain, no dup; ``topic`` already length-prefixed (``utf8_field``)."""
    return b"\x32" + remaining_length(len(topic) + 2 + len(payload)) + topic + struct.pack("!H", packet_id) + payload


class QosOnePublisher:
    """One MQTT client publishing QoS 1 over a blocking socket (one thread, no callbacks)."""

    def __init__(self, client_id: str, host: str = "127.0.0.1", port: int = 1883, *, max_inflight: int = 1000,
                 timeout_s: float = 10.0) -> None:
        self.max_inflight = max_inflight
        self.timeout_s = timeout_s
        self._sock = socket.create_connection((host, port), timeout=timeout_s)
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._buffer = b""
        self._topics: dict[str, bytes] = {}
        self._next_id = 0
        self.inflight = 0
        try:
            self._connect(client_id)
        except BaseException:
            self._sock.close()  # a refused or failed handshake must not leak the socket
            raise

    def _connect(self, client_id: str) -> None:
        self._sock.sendall(connect_packet(client_id))
        kind, body = self._read_packet()
        if kind != CONNACK or len(body) != 2 or body[1] != 0:
            raise MqttProtocolError(f"CONNECT refused: packet type {kind:#x}, body {body!r}")

    def publish(self, messages: Iterable[tuple[str, bytes]], rate_per_s: float | None = None) -> list[float]:
        """Publish every message (topic, payload), at ``rate_per_s`` or as fast as the window allows;
        returns when every PUBACK is in, with each message's send time (epoch s) in order."""
        sent_at: list[float] = []
        pending = iter(messages)
        start = time.perf_counter()
        done = False
        while not done or self.inflight:
            room = self.max_inflight - self.inflight
            if rate_per_s is not None:
                room = min(room, int((time.perf_counter() - start) * rate_per_s) - len(sent_at))
            if not done and room > 0:
                packets = self._packets(pending, min(room, WRITE_AT_MOST))
                if packets is None:
                    done = True
                else:
                    self._sock.sendall(b"".join(packets))
                    now = time.time()
                    sent_at.extend(now for _ in packets)
                    self.inflight += len(packets)
                    continue  # write more while the window has room; acks are read below when it is full
            if done and not self.inflight:
                break
            wait = self.timeout_s
            if not done and rate_per_s is not None and self.inflight < self.max_inflight:
                wait = max(0.0, start + (len(sent_at) + 1) / rate_per_s - time.perf_counter())  # the next one due
            self._read_acks(wait)
        return sent_at

    def _packets(self, messages: Iterator[tuple[str, bytes]], limit: int) -> list[bytes] | None:
        """Up to ``limit`` encoded PUBLISH packets; None when ``messages`` is exhausted."""
        packets: list[bytes] = []
        for topic, payload in messages:
            self._next_id = self._next_id % 65535 + 1
            prefix = self._topics.get(topic)
            if prefix is None:
                prefix = self._topics[topic] = utf8_field(topic)
            packets.append(publish_packet(prefix, self._next_id, payload))
            if len(packets) >= limit:
                return packets
        return packets or None

    def _read_acks(self, wait_s: float) -> None:
        """Read whatever PUBACKs arrive within ``wait_s`` (at least one when the window is full)."""
        readable, _, _ = select.select([self._sock], [], [], wait_s)
        if not readable:
            if self.inflight and wait_s >= self.timeout_s:
                raise TimeoutError(f"no PUBACK within {self.timeout_s} s ({self.inflight} in flight)")
            return
        chunk = self._sock.recv(65536)
        if not chunk:
            raise MqttProtocolError("the broker closed the connection")
        self._buffer += chunk
        self.inflight -= self._take_acks()

    def _take_acks(self) -> int:
        """Consume the complete packets in the buffer; every one must be a PUBACK (4 bytes)."""
        data = self._buffer
        whole = len(data) - len(data) % 4
        for offset in range(0, whole, 4):
            if data[offset] != PUBACK or data[offset + 1] != 2:
                raise MqttProtocolError(f"expected PUBACK, got packet type {data[offset]:#x}")
        self._buffer = data[whole:]
        return whole // 4

    def _read_packet(self) -> tuple[int, bytes]:
        header = self._recv_exactly(2)
        length, shift, byte = 0, 0, header[1]
        while True:
            length += (byte & 0x7F) << shift
            if not byte & 0x80:
                break
            shift += 7
            byte = self._recv_exactly(1)[0]
        return header[0] & 0xF0, self._recv_exactly(length)

    def _recv_exactly(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self._sock.recv(n - len(data))
            if not chunk:
                raise MqttProtocolError("the broker closed the connection")
            data += chunk
        return data

    def close(self) -> None:
        try:
            self._sock.sendall(b"\xe0\x00")  # DISCONNECT: no will, a clean end of session
        finally:
            self._sock.close()
