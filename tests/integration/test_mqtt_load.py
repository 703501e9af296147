"""The lean QoS 1 load generator (``tests.peers.mqtt_load``) against a real Mosquitto of each test's own,
with a paho subscriber on the other side: what the benches count must be what the broker delivered, so
the generator has to deliver every message once, in order and intact, keep its packet ids valid past
65,535, pace at the rate it is asked for, and fail loudly when the broker refuses it."""

from __future__ import annotations

import itertools
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.conftest import free_port
from tests.peers.mqtt_devices import private_mosquitto
from tests.peers.mqtt_load import MqttProtocolError, QosOnePublisher

pytestmark = pytest.mark.integration


class Subscriber:
    """A paho QoS 1 subscriber to ``prefix#`` that keeps every (topic, payload) in arrival order."""

    def __init__(self, port: int, prefix: str, expected: int) -> None:
        self.expected = expected
        self.received: list[tuple[str, bytes]] = []
        self.complete = threading.Event()
        self._subscribed = threading.Event()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"sub-{uuid.uuid4().hex[:8]}",
                                  protocol=paho.MQTTv311)
        self.client.on_connect = lambda client, *_: client.subscribe(prefix + "#", qos=1)
        self.client.on_subscribe = lambda *_: self._subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port, keepalive=30)
        self.client.loop_start()
        if not self._subscribed.wait(10):
            self.close()
            raise TimeoutError("the subscriber got no SUBACK")

    def _on_message(self, _client: paho.Client, _userdata: Any, message: paho.MQTTMessage) -> None:
        self.received.append((message.topic, bytes(message.payload)))
        if len(self.received) >= self.expected:
            self.complete.set()

    def wait(self, timeout_s: float) -> list[tuple[str, bytes]]:
        """Every message once the expected count is in (or what came, after ``timeout_s``)."""
        self.complete.wait(timeout_s)
        return list(self.received)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@contextmanager
def broker_and_subscriber(tmp_path: Path, expected: int, *, broker_inflight: int = 1000
                          ) -> Iterator[tuple[int, str, Subscriber]]:
    """A private Mosquitto, a topic prefix of the test's own and a subscriber already subscribed to it."""
    prefix = f"load-{uuid.uuid4().hex[:8]}/"
    with private_mosquitto(tmp_path, free_port(), max_inflight=broker_inflight) as port:
        subscriber = Subscriber(port, prefix, expected)
        try:
            yield port, prefix, subscriber
        finally:
            subscriber.close()


def publish_all(port: int, messages: list[tuple[str, bytes]], *, max_inflight: int,
                rate_per_s: float | None = None) -> list[float]:
    publisher = QosOnePublisher(f"pub-{uuid.uuid4().hex[:8]}", port=port, max_inflight=max_inflight)
    try:
        return publisher.publish(messages, rate_per_s)
    finally:
        publisher.close()


def payload(n: int, size: int) -> bytes:
    """``size`` bytes, unique to message ``n`` and covering every byte value (binary must survive)."""
    head = f"{n}:".encode()
    return (head + bytes(i % 256 for i in range(size)))[:size] if size >= len(head) else bytes(size)


def sized_for_remaining_length(topic: str, n: int, remaining: int) -> tuple[str, bytes]:
    """A message whose PUBLISH has exactly ``remaining`` as its remaining length (topic field + id + payload)."""
    return topic, payload(n, remaining - (2 + len(topic.encode())) - 2)


def mixed_messages(prefix: str, count: int) -> list[tuple[str, bytes]]:
    """``count`` messages over three topics; every 100th one sits on a remaining-length boundary
    (127/128: 1 and 2 bytes, 16,383/16,384: 2 and 3 bytes) or is empty."""
    topics = [f"{prefix}dev/{k}/telemetry" for k in range(3)] + [f"{prefix}传感器/温度"]
    boundaries = (127, 128, 16_383, 16_384, 40_000)
    messages: list[tuple[str, bytes]] = []
    for n in range(count):
        topic = topics[n % len(topics)]
        if n % 100 == 50:
            messages.append(sized_for_remaining_length(topic, n, boundaries[(n // 100) % len(boundaries)]))
        elif n % 100 == 99:
            messages.append((topic, b""))
        else:
            messages.append((topic, payload(n, 20 + n % 200)))
    return messages


def test_every_message_arrives_once_in_order_and_intact_as_the_window_wraps(tmp_path: Path) -> None:
    with broker_and_subscriber(tmp_path, 3000, broker_inflight=100) as (port, prefix, subscriber):
        messages = mixed_messages(prefix, 3000)
        lengths = {2 + len(topic.encode()) + 2 + len(body) for topic, body in messages}
        assert {127, 128, 16_383, 16_384} <= lengths  # 1-, 2- and 3-byte remaining lengths, each side

        sent_at = publish_all(port, messages, max_inflight=50)
        received = subscriber.wait(15)

    assert len(sent_at) == len(messages)
    assert all(a <= b for a, b in itertools.pairwise(sent_at))
    assert len(received) == len(messages)
    assert received == messages


def test_packet_ids_wrap_past_65535_without_a_protocol_error(tmp_path: Path) -> None:
    count = 70_000
    with broker_and_subscriber(tmp_path, count) as (port, prefix, subscriber):
        started = time.monotonic()
        sent_at = publish_all(port, [(prefix + "wrap", b"x")] * count, max_inflight=1000)
        received = subscriber.wait(20)
        elapsed_s = time.monotonic() - started

    assert len(sent_at) == count
    assert len(received) == count
    assert elapsed_s < 20


def test_rate_pacing_spreads_the_messages_and_sends_none_early(tmp_path: Path) -> None:
    rate_per_s, count = 1000.0, 500
    with broker_and_subscriber(tmp_path, count) as (port, prefix, subscriber):
        sent_at = publish_all(port, [(prefix + "paced", payload(n, 32)) for n in range(count)],
                              max_inflight=1000, rate_per_s=rate_per_s)
        received = subscriber.wait(10)

    assert len(received) == count
    assert 0.4 <= sent_at[-1] - sent_at[0] <= 1.0
    earliest = min(sent - sent_at[0] - n / rate_per_s for n, sent in enumerate(sent_at))
    assert earliest > -0.005, f"a message went out {-earliest * 1000:.1f} ms before its due time"


def wait_for_listener(port: int, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@contextmanager
def closed_mosquitto(workdir: Path, port: int) -> Iterator[int]:
    """A Mosquitto that refuses anonymous clients (and has no password file: it refuses everyone)."""
    conf = workdir / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous false\npersistence false\n", encoding="utf-8")
    broker = subprocess.Popen([shutil.which("mosquitto") or "/usr/sbin/mosquitto", "-c", str(conf)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_listener(port)
        yield port
    finally:
        broker.terminate()
        broker.wait(10)


def test_a_refused_connect_raises_a_protocol_error(tmp_path: Path) -> None:
    with closed_mosquitto(tmp_path, free_port()) as port, pytest.raises(MqttProtocolError, match="CONNECT refused"):
        QosOnePublisher(f"pub-{uuid.uuid4().hex[:8]}", port=port)
