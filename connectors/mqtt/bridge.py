"""paho-mqtt's network thread, bridged into asyncio without blocking either side.

paho calls ``on_message`` on its own thread; the message is handed to the event loop with
``call_soon_threadsafe`` into a bounded ``asyncio.Queue``. Backpressure is MQTT's own: QoS 1 with
manual acknowledgement, and the broker sends at most ``max_inflight`` unacknowledged messages (MQTT
5 Receive Maximum; the broker's inflight limit for 3.1.1), so while the store is slow and nothing
is acknowledged the broker keeps the rest queued in our persistent session.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

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


class MqttBridge:
    """One paho client with a persistent session; messages arrive on ``queue``."""

    def __init__(self, options: MqttOptions, subscriptions: list[tuple[str, int]],
                 loop: asyncio.AbstractEventLoop) -> None:
        self._options = options
        self._subscriptions = subscriptions
        self._loop = loop
        # The broker never has more than max_inflight unacknowledged messages out to us.
        self.queue: asyncio.Queue[Incoming] = asyncio.Queue(maxsize=options.max_inflight + 16)
        self.fatal: asyncio.Future[BaseException] = loop.create_future()
        self.connected = asyncio.Event()
        self.counters: dict[str, int] = {"connects": 0, "disconnects": 0, "overflow": 0}
        self._overflow: set[asyncio.Future[None]] = set()
        self._client = self._build()

    def _build(self) -> paho.Client:
        o = self._options
        v5 = o.broker.protocol == "5"
        client = paho.Client(
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

    def ack(self, message: Incoming) -> None:
        if message.qos > 0:
            self._client.ack(message.mid, message.qos)

    # -- paho's thread -------------------------------------------------------------------------

    def _on_connect(self, client: paho.Client, userdata: Any, flags: Any, reason: ReasonCode,
                    properties: Any) -> None:
        if reason.is_failure:
            log.warning("mqtt connect refused: %s", reason)
            if reason.value in _FATAL_CONNACK or str(reason) in ("Bad user name or password", "Not authorized"):
                error = PermanentError(f"mqtt broker refused the connection: {reason}")
                self._loop.call_soon_threadsafe(self._fail, error)
            return
        self.counters["connects"] += 1
        log.info("mqtt connected (session present: %s)", getattr(flags, "session_present", None))
        # Subscribing again is harmless with a present session and replays retained status.
        client.subscribe(self._subscriptions)
        self._loop.call_soon_threadsafe(self.connected.set)

    def _on_disconnect(self, client: paho.Client, userdata: Any, flags: Any, reason: ReasonCode,
                       properties: Any) -> None:
        self.counters["disconnects"] += 1
        log.warning("mqtt disconnected: %s; paho reconnects with backoff", reason)
        self._loop.call_soon_threadsafe(self.connected.clear)

    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        item = Incoming(topic=message.topic, payload=bytes(message.payload), mid=message.mid, qos=message.qos,
                        retain=bool(message.retain), received_at=time.time())
        self._loop.call_soon_threadsafe(self._enqueue, item)

    # -- the event loop ------------------------------------------------------------------------

    def _enqueue(self, item: Incoming) -> None:
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            # Brokers may exceed Receive Maximum when a session resumes (Mosquitto 2.0 resends the
            # old in-flight window and new messages): hold the excess in waiting puts rather than
            # dropping it; it stays bounded by what the broker sends without our PUBACK.
            self.counters["overflow"] += 1
            self._overflow.add(asyncio.ensure_future(self.queue.put(item)))
            self._overflow = {f for f in self._overflow if not f.done()}

    def _fail(self, error: BaseException) -> None:
        if not self.fatal.done():
            self.fatal.set_result(error)
