"""The MQTT connector's own PUBLISH reading, checked against paho's: the same messages from the same
bytes however the socket cuts them, every other packet still paho's, PUBACKs as paho would write
them, the inbox's wake-ups, and the per-topic routing memory."""

from __future__ import annotations

import asyncio
import random
import struct
import threading
from typing import Any, TypeVar

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from connectors.mqtt.bridge import Inbox
from connectors.mqtt.client import READ_CHUNK_BYTES, BufferedClient
from connectors.mqtt.config import TopicRoute, compile_route
from connectors.mqtt.devices import DeviceBook
from connectors.mqtt.packets import Incoming, cut_short, read_publishes
from connectors.mqtt.routing import TopicRouter
from tests.peers.mqtt_load import remaining_length

# -- packets as a broker sends them ----------------------------------------------------------------


def publish(topic: str | bytes, payload: bytes, *, mid: int = 1, qos: int = 1, retain: bool = False,
            dup: bool = False, properties: bytes | None = b"\x00") -> bytes:
    """A PUBLISH packet; ``properties`` is the MQTT 5 property block (None: MQTT 3.1.1)."""
    name = topic.encode() if isinstance(topic, str) else topic
    body = struct.pack("!H", len(name)) + name + (struct.pack("!H", mid) if qos else b"")
    body += (properties if properties is not None else b"") + payload
    header = 0x30 | (0x08 if dup else 0) | (qos << 1) | (1 if retain else 0)
    return bytes([header]) + remaining_length(len(body)) + body


def publish_properties() -> bytes:
    props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    props.ContentType = "application/json"
    props.MessageExpiryInterval = 60
    props.UserProperty = [("site", "杭州"), ("n", "1")]
    packed: bytes = props.pack()  # type: ignore[no-untyped-call]
    return packed


PINGRESP = b"\xd0\x00"
SUBACK_V5 = b"\x90\x04\x00\x07\x00\x01"  # packet id 7, no properties, granted QoS 1


class ChunkedSocket:
    """The socket paho reads: hands out the given chunks, one per ``recv`` (cut to its size)."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = list(chunks)
        self.sent = bytearray()
        self.recv_sizes: list[int] = []

    def recv(self, bufsize: int) -> bytes:
        if not self.chunks:
            raise BlockingIOError
        self.recv_sizes.append(bufsize)
        chunk = self.chunks.pop(0)
        if len(chunk) > bufsize:
            self.chunks.insert(0, chunk[bufsize:])
        return chunk[:bufsize]

    def send(self, data: bytes) -> int:
        self.sent += data
        return len(data)

    def close(self) -> None:
        pass

    def fileno(self) -> int:
        return -1


C = TypeVar("C", bound=paho.Client)


def client_on(sock: ChunkedSocket, kind: type[C], *, v5: bool = True) -> tuple[C, list[Incoming]]:
    """A client reading ``sock``; each message it hands over, as an ``Incoming`` (received_at 0).
    Those paho parsed itself (``on_message``) are also in the client's ``via_paho``."""
    client = kind(CallbackAPIVersion.VERSION2, client_id="t", protocol=paho.MQTTv5 if v5 else paho.MQTTv311,
                  manual_ack=True)
    got: list[Incoming] = []
    via_paho: list[Incoming] = []

    def on_message(_client: Any, _userdata: Any, m: paho.MQTTMessage) -> None:
        got.append(Incoming(m.topic, bytes(m.payload), m.mid, m.qos, bool(m.retain), 0.0))
        via_paho.append(got[-1])

    client.on_message = on_message
    if isinstance(client, BufferedClient):
        client.on_publishes = lambda messages: got.extend(m._replace(received_at=0.0) for m in messages)
    client._sock = sock  # type: ignore[assignment]
    client.via_paho = via_paho  # type: ignore[attr-defined]
    return client, got


def drain(client: paho.Client, sock: ChunkedSocket) -> None:
    while sock.chunks:
        assert client.loop_read() == MQTTErrorCode.MQTT_ERR_SUCCESS


def stream(v5: bool) -> bytes:
    props = b"\x00" if v5 else None
    return b"".join([
        publish("iot/v1/330106/YY3301060000771/telemetry", b'{"a": 1}', mid=1, properties=props),
        publish("iot/v1/330106/YY3301060000771/status", b'{"status": "online"}', mid=2, retain=True,
                properties=props),
        publish("t/qos0", b"zero", qos=0, properties=props),
        publish("t/dup", b"again", mid=3, dup=True, properties=publish_properties() if v5 else None),
        publish("设备/中文", "数据".encode(), mid=65535, properties=props),
        publish("t/empty", b"", mid=4, properties=props),
        publish("t/big", bytes(range(256)) * 80, mid=5, properties=props),  # a two-byte length, 20 KB
    ])


# -- reading PUBLISH packets -----------------------------------------------------------------------


@pytest.mark.parametrize("v5", [True, False])
def test_publishes_read_as_paho_reads_them(v5: bool) -> None:
    data = stream(v5)
    ours: list[Incoming] = []
    assert read_publishes(data, 0, v5, 12.5, ours) == len(data)
    sock = ChunkedSocket([data])
    client, papers = client_on(sock, paho.Client, v5=v5)
    for _ in range(7):
        client.loop_read()
    assert [m._replace(received_at=0.0) for m in ours] == papers and len(papers) == 7
    assert {m.received_at for m in ours} == {12.5}
    assert ours[1].retain and not ours[0].retain and ours[2].qos == 0 and ours[2].mid == 0
    assert ours[4].topic == "设备/中文" and ours[4].mid == 65535


@pytest.mark.parametrize("packet, why", [
    (PINGRESP, "another packet type"),
    (publish("t/q2", b"x", qos=2), "QoS 2: paho's PUBREC/PUBREL state"),
    (publish("", b"x"), "an empty topic: a topic alias"),
    (publish(b"t/\xff\xfe", b"x"), "a topic that is not UTF-8"),
    (b"\x32\x01\x00", "a remaining length too short for a topic"),
    (b"\x32\x04\x00\x09ab", "a topic longer than the packet"),
    (b"\x32\x05\x00\x01a\x00", "no room for the packet id"),
    (b"\x32\x06\x00\x01a\x00\x01\x05", "properties longer than the packet"),
    (b"\x32\x80\x80\x80\x80\x01", "a fifth remaining-length byte"),
])
def test_anything_else_ends_the_run_and_is_left_where_it_starts(packet: bytes, why: str) -> None:
    first = publish("t/a", b"1")
    out: list[Incoming] = []
    assert read_publishes(first + packet + first, 0, True, 0.0, out) == len(first), why
    assert [m.topic for m in out] == ["t/a"]


def test_a_packet_cut_short_waits_for_the_rest() -> None:
    packet = publish("t/a", b"0123456789")
    for cut in range(1, len(packet)):
        out: list[Incoming] = []
        assert read_publishes(packet + packet[:cut], 0, True, 0.0, out) == len(packet)
        assert len(out) == 1
        assert cut_short(packet[:cut], 0, READ_CHUNK_BYTES), cut
    assert not cut_short(packet, 0, READ_CHUNK_BYTES)
    assert not cut_short(b"\x32\x80\x80\x80\x80\x01", 0, READ_CHUNK_BYTES)  # malformed: paho's to refuse
    huge = b"\x32" + remaining_length(READ_CHUNK_BYTES + 10) + b"\x00\x01a"
    assert not cut_short(huge, 0, READ_CHUNK_BYTES)  # larger than a chunk: paho reads it on


# -- the client: chunks, paho's packets, keepalive, PUBACKs ----------------------------------------


@pytest.mark.parametrize("seed", range(6))
def test_the_same_messages_however_the_socket_cuts_the_stream(seed: int) -> None:
    data = stream(True)
    sizes = random.Random(seed).choices([1, 2, 3, 7, 50, 300, 5000, 30000], k=10_000)
    chunks, pos = [], 0
    for size in sizes:
        if pos >= len(data):
            break
        chunks.append(data[pos:pos + size])
        pos += size
    sock = ChunkedSocket(chunks)
    client, got = client_on(sock, BufferedClient)
    drain(client, sock)
    expected: list[Incoming] = []
    read_publishes(data, 0, True, 0.0, expected)
    assert got == [m._replace(received_at=0.0) for m in expected]
    assert client.via_paho == []  # type: ignore[attr-defined]  # cut or not, never paho's slow parse
    assert set(sock.recv_sizes) == {READ_CHUNK_BYTES} and len(sock.recv_sizes) == len(chunks)


def test_without_a_receiver_paho_parses_every_message() -> None:
    data = stream(True)
    sock = ChunkedSocket([data[i:i + 1000] for i in range(0, len(data), 1000)])
    client, got = client_on(sock, BufferedClient)
    client.on_publishes = None
    drain(client, sock)
    expected: list[Incoming] = []
    read_publishes(data, 0, True, 0.0, expected)
    assert got == client.via_paho == [m._replace(received_at=0.0) for m in expected]  # type: ignore[attr-defined]


def test_other_packets_stay_paho_s_in_their_place() -> None:
    subscribed: list[int] = []
    data = b"".join([publish("t/1", b"1", mid=1), SUBACK_V5, publish("t/2", b"2", mid=2), PINGRESP,
                     publish("t/q2", b"q2", mid=3, qos=2), publish("t/4", b"4", mid=4)])
    sock = ChunkedSocket([data[:len(data) // 2], data[len(data) // 2:]])
    client, got = client_on(sock, BufferedClient)
    client.on_subscribe = lambda _c, _u, mid, _codes, _props: subscribed.append(mid)
    client._ping_t = 123.0
    drain(client, sock)
    assert subscribed == [7] and client._ping_t == 0  # SUBACK and PINGRESP handled by paho
    assert [m.topic for m in got] == ["t/1", "t/2", "t/4"]  # QoS 2 waits for its PUBREL (paho)
    assert client.via_paho == []  # type: ignore[attr-defined]
    assert bytes(sock.sent) == b"\x50\x02\x00\x03"  # paho's PUBREC for the QoS 2 message


def test_reading_publishes_keeps_the_keepalive_clock() -> None:
    sock = ChunkedSocket([publish("t/1", b"1")])
    client, got = client_on(sock, BufferedClient)
    client._last_bytes_received = 0.0
    drain(client, sock)
    assert got and client._last_bytes_received > 0


def test_a_closed_connection_is_lost_and_a_half_read_packet_dropped() -> None:
    packet = publish("t/1", b"1")
    sock = ChunkedSocket([packet[:3], b""])
    client, got = client_on(sock, BufferedClient)
    disconnects: list[Any] = []
    client.on_disconnect = lambda *args: disconnects.append(args)
    assert client.loop_read() == MQTTErrorCode.MQTT_ERR_SUCCESS  # the start of a packet: kept
    assert client.loop_read() == MQTTErrorCode.MQTT_ERR_CONN_LOST
    assert not got and len(disconnects) == 1
    assert client._read_pos == len(client._read_buffer)  # a new connection starts afresh


def test_a_batch_s_pubacks_are_paho_s_bytes_in_one_write() -> None:
    sock = ChunkedSocket([])
    client, _ = client_on(sock, BufferedClient)
    mids = [1, 2, 255, 256, 65535]
    client.ack_many(mids)
    client.ack_many([])
    assert bytes(sock.sent) == b"".join(struct.pack("!BBH", 0x40, 2, mid) for mid in mids)


# -- the inbox -------------------------------------------------------------------------------------


def message(mid: int) -> Incoming:
    return Incoming("t", b"x", mid, 1, False, 0.0)


async def test_the_inbox_wakes_the_loop_only_for_what_it_waits_for() -> None:
    inbox = Inbox(asyncio.get_running_loop())
    wakeups = 0
    real_wake = inbox._wake

    def counting_wake() -> None:
        nonlocal wakeups
        wakeups += 1
        real_wake()

    inbox._wake = counting_wake  # type: ignore[method-assign]
    inbox.put_many([message(1)])
    assert wakeups == 0 and len(inbox) == 1  # nobody waits: no wake-up

    gathering = asyncio.create_task(inbox.batch(10, 5.0))
    await asyncio.sleep(0.01)  # took 1, now sleeps until 9 more are in (or 5 s pass)

    def paho_thread() -> None:
        for mid in range(2, 10):
            inbox.put_many([message(mid)])  # 8 more: not enough to wake it
        pending_before_the_last = wakeups
        inbox.put_many([message(10), message(11)])  # the batch is full: one wake-up
        assert pending_before_the_last == 0

    await asyncio.to_thread(paho_thread)
    batch = await asyncio.wait_for(gathering, 1.0)
    assert [m.mid for m in batch] == list(range(1, 11)) and wakeups == 1
    assert [m.mid for m in inbox.take(10)] == [11] and len(inbox) == 0


async def test_the_inbox_splits_what_paho_handed_over_together() -> None:
    inbox = Inbox(asyncio.get_running_loop())
    inbox.put_many([message(mid) for mid in range(1, 8)])
    inbox.put_many([message(mid) for mid in range(8, 10)])
    assert [m.mid for m in inbox.take(3)] == [1, 2, 3]
    assert [m.mid for m in inbox.take(5)] == [4, 5, 6, 7, 8]
    assert len(inbox) == 1 and [m.mid for m in inbox.take(5)] == [9] and inbox.take(5) == []


async def test_a_cancelled_wait_leaves_the_inbox_usable() -> None:
    inbox = Inbox(asyncio.get_running_loop())
    waiting = asyncio.create_task(inbox.batch(5, 1.0))
    await asyncio.sleep(0.01)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    threading.Thread(target=inbox.put_many, args=([message(1)],)).start()
    assert [m.mid for m in await asyncio.wait_for(inbox.batch(5, 0.01), 1.0)] == [1]


# -- routing memory and device liveness ------------------------------------------------------------


def test_a_topic_s_match_is_remembered_within_bounds() -> None:
    routes = [compile_route(TopicRoute(template="iot/v1/{region}/{device_id}/telemetry", codec="json"), None),
              compile_route(TopicRoute(template="hj212/v1/{device_id}/raw", codec="hj212"), None)]
    router = TopicRouter(routes, envelope_per_topic=False, max_topics=2)
    first = router.match("iot/v1/330106/D1/telemetry")
    assert first is not None and first.parts == {"region": "330106", "device_id": "D1"}
    assert first.codec == "json" and first.group == ("iot/v1/{region}/{device_id}/telemetry", "telemetry-json", "")
    assert router.match("iot/v1/330106/D1/telemetry") is first  # remembered
    assert router.match("other/topic") is None and router.match("other/topic") is None
    hj = router.match("hj212/v1/MN1/raw")  # a third topic: the oldest is forgotten
    assert hj is not None and hj.route is routes[1] and len(router._known) == 2
    again = router.match("iot/v1/330106/D1/telemetry")
    assert again is not first and again == first  # worked out anew, the same answer
    per_topic = TopicRouter(routes, envelope_per_topic=True).match("iot/v1/330106/D1/telemetry")
    assert per_topic is not None and per_topic.group[2] == "iot/v1/330106/D1/telemetry"


def test_a_batch_s_devices_are_seen_together() -> None:
    now = [100.0]
    book = DeviceBook({}, expected_interval_s=60, clock=lambda: now[0])
    book.seen_all(["A", "B", "A"])
    now[0] = 200.0
    book.seen_all([])
    book.seen("B")
    status = book.snapshot()
    assert status["A"]["status"] == "online" and status["A"]["last_seen"] == 100.0
    assert status["B"]["last_seen"] == 200.0 and status["B"]["since"] == 100.0
