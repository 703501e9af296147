"""paho-mqtt's network thread, bridged into asyncio without blocking either side.

paho's thread reads each chunk's PUBLISH packets together (``BufferedClient.on_publishes``) and
hands them to the event loop through an ``Inbox`` in one piece: appended under a lock, with a
``call_soon_threadsafe`` wake-up only when the loop waits for what just arrived (a batch's first
message, or enough to fill it), not per chunk: while a batch gathers for ``batch_max_wait_s`` the
loop sleeps until then, whatever arrives meanwhile. Each wake-up is a socket write and a loop
iteration; at a steady few thousand messages/s, chunks hold a message or two. A settled batch is
acknowledged with one write too (``BufferedClient.ack_many``). Backpressure is MQTT's own: QoS 1
with manual acknowledgement, and the broker sends at most ``max_inflight`` unacknowledged messages
(MQTT 5 Receive Maximum; the broker's ``max_inflight_messages`` for 3.1.1), so while the store is
slow and nothing is acknowledged the inbox stays bounded and the broker keeps the rest queued in
our persistent session.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import threading
import time
from collections import deque
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from connectors.base import ConnectorTelemetry, NoTelemetry
from connectors.mqtt.client import BufferedClient
from connectors.mqtt.config import MqttOptions
from connectors.mqtt.packets import Incoming
from gateway.errors import ConfigError, PermanentError, SourceUnavailable

__all__ = ["Inbox", "Incoming", "MqttBridge"]

log = logging.getLogger(__name__)

# CONNACK reasons that retrying cannot fix (MQTT 5 codes; 3.1.1 return codes 4 and 5 map to these).
_FATAL_CONNACK = frozenset({0x84, 0x85, 0x86, 0x87, 0x8C})


class Inbox:
    """Messages from paho's thread to the event loop, taken in batches.

    Kept as the lists paho's thread handed over (no per-message work on either side), with their
    total in ``len()``. Unbounded by itself: the broker never has more than ``max_inflight``
    unacknowledged messages out to us (brokers may exceed it briefly when a session resumes:
    Mosquitto 2.0 resends the old in-flight window and then new messages; nothing is dropped for that).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._lock = threading.Lock()
        self._chunks: deque[list[Incoming]] = deque()
        self._count = 0
        self._wanted = 0  # the loop waits until this many are in (0: it does not wait)
        self._wake_pending = False
        self._waiter: asyncio.Future[None] | None = None

    def put(self, item: Incoming) -> None:
        """paho's thread: one message."""
        self.put_many([item])

    def put_many(self, items: list[Incoming]) -> None:
        """paho's thread: append (the list is the inbox's now), and wake the loop if it waits for
        no more than are in and no wake-up is already on its way."""
        with self._lock:
            self._chunks.append(items)
            self._count += len(items)
            if not self._wanted or self._count < self._wanted or self._wake_pending:
                return
            self._wake_pending = True
        self._loop.call_soon_threadsafe(self._wake)

    def _wake(self) -> None:
        with self._lock:
            self._wake_pending = False
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def __len__(self) -> int:
        return self._count

    def take(self, max_n: int) -> list[Incoming]:
        """Up to ``max_n`` waiting messages, oldest first, without waiting."""
        out: list[Incoming] = []
        with self._lock:
            while self._chunks and len(out) < max_n:
                chunk, room = self._chunks[0], max_n - len(out)
                if len(chunk) <= room:
                    out += self._chunks.popleft()
                else:
                    out += chunk[:room]
                    self._chunks[0] = chunk[room:]
            self._count -= len(out)
        return out

    async def _until(self, wanted: int, timeout_s: float | None = None) -> None:
        """Return once ``wanted`` messages are in, or after ``timeout_s`` (maybe earlier: callers check)."""
        with self._lock:
            if self._count >= wanted:
                return
            self._wanted = wanted
        waiter = self._waiter = self._loop.create_future()
        timer = None if timeout_s is None else self._loop.call_later(timeout_s, _resolve, waiter)
        try:
            await waiter
        finally:
            with self._lock:
                self._wanted = 0
            self._waiter = None
            if timer is not None:
                timer.cancel()

    async def batch(self, max_n: int, max_wait_s: float) -> list[Incoming]:
        """Wait for a first message, then gather more for up to ``max_wait_s`` or ``max_n``."""
        out: list[Incoming] = []
        while not out:
            await self._until(1)
            out = self.take(max_n)
        deadline = self._loop.time() + max_wait_s
        while len(out) < max_n:
            remaining = deadline - self._loop.time()
            if remaining <= 0:
                break
            await self._until(max_n - len(out), remaining)
            out += self.take(max_n - len(out))
        return out


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class MqttBridge:
    """One paho client with a persistent session; messages arrive in ``inbox``."""

    def __init__(self, options: MqttOptions, subscriptions: list[tuple[str, int]],
                 loop: asyncio.AbstractEventLoop, telemetry: ConnectorTelemetry | None = None) -> None:
        self._options = options
        self._subscriptions = subscriptions
        self._loop = loop
        self._telemetry = telemetry or NoTelemetry()
        self.inbox = Inbox(loop)
        self.fatal: asyncio.Future[BaseException] = loop.create_future()
        self.connected = asyncio.Event()
        self.counters: dict[str, int] = {"connects": 0, "disconnects": 0}
        self._client = self._build()

    def _build(self) -> BufferedClient:
        o = self._options
        v5 = o.broker.protocol == "5"
        client = BufferedClient(
            CallbackAPIVersion.VERSION2, client_id=o.client_id,
            protocol=paho.MQTTv5 if v5 else paho.MQTTv311,
            clean_session=None if v5 else o.clean_start, manual_ack=True, reconnect_on_failure=True,
        )
        if o.broker.username is not None:
            password = o.broker.password.get_secret_value() if o.broker.password else None
            client.username_pw_set(o.broker.username, password)
        if o.broker.tls:
            try:
                client.tls_set(ca_certs=str(o.broker.ca_file) if o.broker.ca_file else None,
                               tls_version=ssl.PROTOCOL_TLS_CLIENT)
            except (OSError, ssl.SSLError) as exc:
                raise ConfigError(f"broker.ca_file: {exc}") from exc
        client.reconnect_delay_set(min_delay=max(1, int(o.broker.reconnect_min_s)),
                                   max_delay=max(1, int(o.broker.reconnect_max_s)))
        client.connect_timeout = o.broker.connect_timeout_s
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message  # what paho still parses itself: QoS 2, topic aliases
        client.on_publishes = self.inbox.put_many
        return client

    def _connect_properties(self) -> Properties | None:
        if self._options.broker.protocol != "5":
            return None
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = self._options.session_expiry_s
        props.ReceiveMaximum = self._options.max_inflight
        return props

    def start(self) -> None:
        o = self._options
        kwargs: dict[str, Any] = {"keepalive": o.broker.keepalive_s}
        if o.broker.protocol == "5":
            kwargs["clean_start"] = o.clean_start
            kwargs["properties"] = self._connect_properties()
        try:
            self._client.connect_async(o.broker.host, o.broker.port, **kwargs)
        except (OSError, ValueError) as exc:
            raise SourceUnavailable(f"mqtt {o.broker.host}:{o.broker.port}: {exc}") from exc
        # paho's own thread: reads the socket, reconnects with backoff, sends our PUBACKs.
        self._client.loop_start()

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def ack_all(self, messages: list[Incoming]) -> None:
        """PUBACK a settled batch in one write (QoS 0 messages need none; routes allow 0 or 1)."""
        self._client.ack_many([message.mid for message in messages if message.qos == 1])

    # -- paho's thread -------------------------------------------------------------------------

    def _on_connect(self, client: paho.Client, userdata: Any, flags: Any, reason: ReasonCode,
                    properties: Any) -> None:
        if reason.is_failure:
            log.warning("mqtt connect refused: %s", reason)
            if reason.value in _FATAL_CONNACK or str(reason) in ("Bad user name or password", "Not authorized"):
                error = PermanentError(f"mqtt broker refused the connection: {reason}")
                self._loop.call_soon_threadsafe(self._fail, error)
            self._loop.call_soon_threadsafe(self._refused, str(reason))
            return
        self.counters["connects"] += 1
        log.info("mqtt connected (session present: %s)", getattr(flags, "session_present", None))
        # Subscribing again is harmless with a present session and replays retained status.
        client.subscribe(self._subscriptions)
        self._loop.call_soon_threadsafe(self._connected)

    def _on_disconnect(self, client: paho.Client, userdata: Any, flags: Any, reason: ReasonCode,
                       properties: Any) -> None:
        self.counters["disconnects"] += 1
        log.warning("mqtt disconnected: %s; paho reconnects with backoff", reason)
        self._loop.call_soon_threadsafe(self._disconnected, str(reason))

    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        self.inbox.put(Incoming(topic=message.topic, payload=bytes(message.payload), mid=message.mid,
                                qos=message.qos, retain=bool(message.retain), received_at=time.time()))

    # -- the event loop ------------------------------------------------------------------------

    # Telemetry is called from the event loop only: its implementations need not be thread-safe.

    def _connected(self) -> None:
        self.connected.set()
        self._telemetry.count("connects")
        self._telemetry.state("running")

    def _disconnected(self, reason: str) -> None:
        self.connected.clear()
        self._telemetry.count("disconnects")
        self._telemetry.state("connecting", f"disconnected: {reason}")

    def _refused(self, reason: str) -> None:
        self._telemetry.count("connect_refused")
        self._telemetry.error(f"mqtt broker refused the connection: {reason}")
        self._telemetry.state("connecting", f"refused: {reason}")

    def _fail(self, error: BaseException) -> None:
        if not self.fatal.done():
            self.fatal.set_result(error)
