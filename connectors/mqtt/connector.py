"""The MQTT connector: IoT telemetry (JSON, HJ 212), device status, and video analytics events.

Every message is QoS 1 and acknowledged (PUBACK) only after ``publish`` returned, i.e. after the
durable write; when the store is unavailable nothing is acknowledged and the batch is retried, so
a crash loses nothing (the broker redelivers from our persistent session; ingest dedupes on the
record id). Status messages are device state, never records. Video detections pass the label
table and the per camera + label suppression window first; the rest are dropped and counted.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, ClassVar

from connectors.base import ConnectorContext, Publish
from connectors.codecs import decode
from connectors.mqtt.bridge import Incoming, MqttBridge
from connectors.mqtt.config import CompiledRoute, MqttOptions, compile_route
from connectors.mqtt.devices import DeviceBook, load_registry
from connectors.mqtt.readtimes import ReadTimes, digest
from connectors.mqtt.video import (
    EventFilter,
    Verdict,
    gb28181_facts,
    json_event_facts,
    load_camera_regions,
    load_labels,
)
from gateway.envelope import Envelope
from gateway.errors import ConfigError, PayloadError, StoreUnavailable

log = logging.getLogger(__name__)

_CODEC_FORMAT = {"json": "json", "hj212": "hj212", "video_event": "json", "gb28181": "gb28181", "status": "json"}
_VIDEO = frozenset({"video_event", "gb28181"})


@dataclass(slots=True)
class _Group:
    """Messages of one topic and variant, published as one envelope."""

    route: CompiledRoute
    topic: str
    parts: dict[str, str]
    messages: list[Incoming] = field(default_factory=list)
    payloads: list[Any] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)


class MqttConnector:
    Config: ClassVar[type[MqttOptions]] = MqttOptions
    pushes_over_http: ClassVar[bool] = False

    def __init__(self, connector_id: str, config: MqttOptions, context: ConnectorContext) -> None:
        self.connector_id = connector_id
        self.config = config
        self.routes = [compile_route(r, config.share_group) for r in config.topics]
        codecs = {r.codec for r in config.topics}
        devices = load_registry(config.device_registry) if config.device_registry else {}
        self.devices = DeviceBook(devices, expected_interval_s=config.expected_interval_s,
                                  intervals_s=config.device_intervals_s, silence_factor=config.silence_factor)
        if codecs & _VIDEO and config.label_table is None:
            raise ConfigError("label_table: video topics need the label table (which labels are supervision events)")
        labels = load_labels(config.label_table) if config.label_table else {}
        self.events = EventFilter(labels, config.duplicate_window_s)
        self.camera_regions = load_camera_regions(config.camera_registry) if config.camera_registry else {}
        # Counters for the lead to expose (Prometheus); names are stable.
        self.counters: dict[str, int] = {}
        self.recent_rejections: deque[dict[str, Any]] = deque(maxlen=100)
        self.bridge: MqttBridge | None = None
        self.read_times = ReadTimes(context.state)

    # -- what the runtime can expose --------------------------------------------------------------

    def device_status(self) -> dict[str, dict[str, Any]]:
        return self.devices.snapshot()

    def _count(self, name: str, n: int = 1) -> None:
        self.counters[name] = self.counters.get(name, 0) + n

    # -- run ------------------------------------------------------------------------------------

    async def run(self, publish: Publish) -> None:
        loop = asyncio.get_running_loop()
        subscriptions: list[tuple[str, int]] = [(r.subscription, r.route.qos) for r in self.routes]
        await self.read_times.load()
        bridge = MqttBridge(self.config, subscriptions, loop)
        self.bridge = bridge
        bridge.start()
        consume = asyncio.create_task(self._consume(bridge, publish), name=f"{self.connector_id} consume")
        watch = asyncio.create_task(self._watch_silence(), name=f"{self.connector_id} silence")
        try:
            fatal: asyncio.Future[Any] = bridge.fatal
            done, _ = await asyncio.wait([consume, fatal], return_when=asyncio.FIRST_COMPLETED)
            if fatal in done:
                raise bridge.fatal.result()
            await consume
        finally:
            for task in (consume, watch):
                task.cancel()
            await asyncio.gather(consume, watch, return_exceptions=True)
            await asyncio.to_thread(bridge.stop)

    async def _watch_silence(self) -> None:
        while True:
            await asyncio.sleep(self.config.silence_check_s)
            for device_id in self.devices.check_silence():
                self._count("devices_went_silent")
                log.warning("device %s silent for more than %.0f s (设备离线未上报)", device_id,
                            self.config.silence_factor * self.devices.interval_s(device_id))

    async def _consume(self, bridge: MqttBridge, publish: Publish) -> None:
        while True:
            batch = [await bridge.queue.get()]
            deadline = asyncio.get_running_loop().time() + self.config.batch_max_wait_s
            while len(batch) < self.config.batch_max_messages:
                if not bridge.queue.empty():
                    batch.append(bridge.queue.get_nowait())
                    continue
                timeout = deadline - asyncio.get_running_loop().time()
                if timeout <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(bridge.queue.get(), timeout))
                except TimeoutError:
                    break
            await self.handle(batch, publish, bridge.ack)

    async def handle(self, batch: list[Incoming], publish: Publish, ack: Any) -> None:
        """Sort a batch into records to publish, state and drops; acknowledge each when settled."""
        groups: dict[tuple[str, str, float | None], _Group] = {}
        for message in batch:
            self._count("messages")
            key = digest(message.topic, message.payload)
            # One read time per batch (one state write), except a redelivery keeps its first one.
            first_read = self.read_times.first_read(key)
            message = replace(message, received_at=first_read if first_read is not None else batch[0].received_at)
            found = self._route(message.topic)
            if found is None:
                self._count("unrouted")
                ack(message)
                continue
            route, parts = found
            try:
                payload = self._decode(route, message)
                if route.route.codec == "status":
                    self._status(parts, payload, message)
                    ack(message)
                    continue
                if route.route.codec in _VIDEO:
                    await self._video(route, parts, payload, message, publish, ack, key)
                    continue
                self._telemetry_check(route, parts, payload)
            except PayloadError as exc:
                self._reject(message, exc)
                ack(message)  # a bad payload never gets better: no retry (contract)
                continue
            # a redelivered message keeps its first read time, so it groups with its own kind
            group_key = (route.route.effective_variant, message.topic, first_read)
            group = groups.setdefault(group_key, _Group(route=route, topic=message.topic, parts=parts))
            group.messages.append(message)
            group.payloads.append(payload)
            group.keys.append(key)
        for at in {g.messages[0].received_at for g in groups.values()}:
            await self.read_times.note([k for g in groups.values() if g.messages[0].received_at == at
                                        for k in g.keys], at)
        for group in groups.values():
            await self._publish(group, publish)
            for message in group.messages:
                ack(message)

    def _route(self, topic: str) -> tuple[CompiledRoute, dict[str, str]] | None:
        for route in self.routes:
            if (parts := route.match(topic)) is not None:
                return route, parts
        return None

    def _decode(self, route: CompiledRoute, message: Incoming) -> Any:
        if len(message.payload) > self.config.max_payload_bytes:
            raise PayloadError("PAYLOAD_TOO_LARGE", f"{len(message.payload)} bytes > {self.config.max_payload_bytes}")
        payload = decode(_CODEC_FORMAT[route.route.codec], message.payload)
        if route.route.codec in ("json", "video_event", "status") and not isinstance(payload, dict):
            raise PayloadError("MALFORMED", "the message must be one JSON object")
        return payload

    def _device_id(self, parts: dict[str, str], payload: dict[str, Any]) -> str:
        return parts.get("device_id") or str(payload.get("deviceId") or payload.get("MN") or "")

    def _status(self, parts: dict[str, str], payload: dict[str, Any], message: Incoming) -> None:
        device_id = self._device_id(parts, payload)
        self.devices.status_message(device_id, payload, retained=message.retain)
        self._count(f"status_{payload.get('status')}")

    def _telemetry_check(self, route: CompiledRoute, parts: dict[str, str], payload: dict[str, Any]) -> None:
        device_id = self._device_id(parts, payload)
        body_id = str(payload.get("deviceId") or payload.get("MN") or "")
        if parts.get("device_id") and body_id and body_id != parts["device_id"]:
            raise PayloadError("IOT_DEVICE_MISMATCH", f"topic device {parts['device_id']} but payload {body_id}")
        if code := self.devices.region_problem(device_id, parts.get("region")):
            raise PayloadError(code, f"topic region {parts.get('region')} differs from the registry's for {device_id}")
        self.devices.seen(device_id)

    async def _video(self, route: CompiledRoute, parts: dict[str, str], payload: Any, message: Incoming,
                     publish: Publish, ack: Any, key: str) -> None:
        facts = json_event_facts(payload) if route.route.codec == "video_event" else gb28181_facts(payload)
        region = self.camera_regions.get(facts[1])
        if region and parts.get("region") and region != parts["region"]:
            raise PayloadError("VIDEO_REGION_MISMATCH",
                               f"topic region {parts['region']} differs from camera {facts[1]}'s")
        verdict: Verdict = self.events.judge(facts, message.received_at)
        if not verdict.keep:
            self._count(f"events_dropped_{verdict.reason}")
            ack(message)
            return
        group = _Group(route=route, topic=message.topic, parts=parts, messages=[message], payloads=[payload],
                       keys=[key])
        await self.read_times.note(group.keys, message.received_at)
        await self._publish(group, publish)
        self.events.published(verdict)
        self._count("events_published")
        ack(message)

    def _reject(self, message: Incoming, exc: PayloadError) -> None:
        self._count(f"rejected_{exc.code}")
        entry = {"topic": message.topic, "code": exc.code, "message": str(exc),
                 "at": datetime.fromtimestamp(message.received_at, UTC).isoformat()}
        self.recent_rejections.append(entry)
        log.warning("mqtt message rejected (报文被拒收): topic %s: %s %s", message.topic, exc.code, exc)

    def envelope_for(self, group: _Group) -> Envelope:
        first = group.messages[0]
        received = datetime.fromtimestamp(first.received_at, UTC)
        meta: dict[str, Any] = {**group.parts, "variant": group.route.route.effective_variant,
                                "topic": group.topic, "location": f"topic {group.topic}"}
        single = len(group.payloads) == 1
        # HJ 212 raw bytes hold the password: the codec's masked packet is in the payload instead.
        raw = first.payload if single and group.route.route.codec != "hj212" else None
        return Envelope(connector=self.connector_id, payload=group.payloads[0] if single else list(group.payloads),
                        received_at=received, meta=meta, raw=raw, records_inline=not single)

    async def _publish(self, group: _Group, publish: Publish) -> None:
        """Publish until the durable write succeeds: nothing is acknowledged before that."""
        envelope = self.envelope_for(group)
        delay_s = self.config.store_retry_s
        while True:
            try:
                receipt = await publish(envelope)
            except StoreUnavailable as exc:
                self._count("store_unavailable")
                log.warning("store unavailable; %d messages not acknowledged, retry in %.1f s: %s",
                            len(group.messages), delay_s, exc.__cause__ or exc)
                await asyncio.sleep(delay_s)
                delay_s = min(delay_s * 2, self.config.store_retry_max_s)
                continue
            self._count("records_accepted", receipt.accepted)
            self._count("records_rejected", receipt.rejected)
            self._count("records_duplicate", receipt.duplicate)
            return
