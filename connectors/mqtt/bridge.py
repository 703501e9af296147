"""paho-mqtt's network thread, bridged into asyncio without blocking either side.

paho calls ``on_message`` on its own thread; messages are handed to the event loop in bulk
through an ``Inbox``: appended under a lock, with one ``call_soon_threadsafe`` wake-up per burst
rather than per message (each wake-up is a socket write and a loop iteration); a settled batch is
acknowledged with one write too (``BufferedClient.ack_many``). Backpressure is MQTT's own: QoS 1 with manual
acknowledgement, and the broker sends at most ``max_inflight`` unacknowledged messages (MQTT 5
Receive Maximum; the broker's ``max_inflight_messages`` for 3.1.1), so while the store is slow and
nothing is acknowledged the inbox stays bounded and the broker keeps the rest queued in our
persistent session.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from connectors.base import ConnectorTelemetry, NoTelemetry
from connectors.mqtt.client import BufferedClient
from connectors.mqtt.config import MqttOptions
from gateway.errors import ConfigError, PermanentError, SourceUnavailable

log = logging.getLogger(__name__)

# CONNACK reasons that retrying cannot fix (MQTT 5 codes; 3.1.1 return codes 4 and 5 map to these).
_FATAL_CONNACK = frozenset({0x84, 0x85, 0x86, 0x87, 0x8C})


@dataclass(frozen=True, slots=True)
class Incoming:
    topic: str
    payload: bytes
    mid: int
    qos: int
    retain: bool
    received_at: float  # epoch s, when paho handed it over


class Inbox:
    """Messages from paho's thread to the event loop, taken in batches.

    Unbounded by itself: the broker never has more than ``max_inflight`` unacknowledged messages
    out to us (brokers may exceed it briefly when a session resumes: Mosquitto 2.0 resends the old
    in-flight window and then new messages; nothing is dropped for that).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._lock = threading.Lock()
        self._items: deque[Incoming] = deque()
        self._wake_pending = False
        self._ready = asyncio.Event()

    def put(self, item: Incoming) -> None:
        """paho's thread: append, and wake the loop unless a wake-up is already on its way."""
        with self._lock:
            self._items.append(item)
            if self._wake_pending:
                return
            self._wake_pending = True
        self._loop.call_soon_threadsafe(self._wake)

    def _wake(self) -> None:
        with self._lock:
            self._wake_pending = False
        self._ready.set()

    def __len__(self) -> int:
        return len(self._items)

    def take(self, max_n: int) -> list[Incoming]:
        """Up to ``max_n`` waiting messages, oldest first, without waiting."""
        with self._lock:
            n = min(max_n, len(self._items))
            out = [self._items.popleft() for _ in range(n)]
            if not self._items:
                self._ready.clear()
        return out

    async def batch(self, max_n: int, max_wait_s: float) -> list[Incoming]:
        """Wait for a first message, then gather more for up to ``max_wait_s`` or ``max_n``."""
        loop = asyncio.get_running_loop()
        out: list[Incoming] = []
        while not out:
            await self._ready.wait()
            out = self.take(max_n)
        deadline = loop.time() + max_wait_s
        while len(out) < max_n:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            if not self._ready.is_set():
                try:
                    await asyncio.wait_for(self._ready.wait(), remaining)
                except TimeoutError:
                    break
            out.extend(self.take(max_n - len(out)))
        return out


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
        client.on_message = self._on_message
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
