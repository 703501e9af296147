"""The MQTT connector: IoT telemetry (JSON, HJ 212), device status, and video analytics events.

Every message is QoS 1 and acknowledged (PUBACK) only after ``publish`` returned, i.e. after the
durable write; when the store is unavailable nothing is acknowledged and the batch is retried, so
a crash loses nothing (the broker redelivers from our persistent session; ingest dedupes on the
record id, and a copy's read time is not part of it). Status messages are device state, never
records. Video detections pass the label table and the per camera + label suppression window
first (kept in the connector's durable state, so it holds across a restart); the rest are
dropped and counted. Counters and device gauges go to the context's telemetry.

Throughput: messages come over from paho's thread in bulk (its PUBLISH packets read without
paho's per-message machinery, ``packets.py``), each topic's template match is remembered
(``routing.py``), JSON goes straight to orjson, a batch (``batch_max_messages`` or
``batch_max_wait_s``) becomes one envelope per topic template and variant (one durable write each;
its meta holds the topic parts all its messages share, or per topic with ``envelope_per_topic``),
and the batch is acknowledged together after its writes. The broker's in-flight window (``max_inflight``)
bounds what is read but not yet acknowledged: it must cover a batch or two, or the connector waits
for the broker instead of the store.
"""

from __future__ import annotations

import asyncio
import codecs
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any, ClassVar, TypeVar

import orjson

from connectors.base import ConnectorContext, Publish, PublishReceipt
from connectors.codecs import DEFAULT_LIMITS, decode
from connectors.codecs.hj212 import mask_password
from connectors.mqtt.bridge import Incoming, MqttBridge
from connectors.mqtt.config import CompiledRoute, MqttOptions, compile_route
from connectors.mqtt.devices import DeviceBook, load_registry
from connectors.mqtt.routing import TopicRouter
from connectors.mqtt.video import (
    EventFilter,
    EventWindows,
    Verdict,
    gb28181_facts,
    json_event_facts,
    load_camera_regions,
    load_labels,
)
from gateway.envelope import Envelope, Refusal
from gateway.errors import ConfigError, PayloadError, StoreUnavailable

log = logging.getLogger(__name__)

_CODEC_FORMAT = {"json": "json", "hj212": "hj212", "video_event": "json", "gb28181": "gb28181", "status": "json"}
_VIDEO = frozenset({"video_event", "gb28181"})
_JSON_OBJECT = frozenset({"json", "video_event", "status"})

_T = TypeVar("_T")

Ack = Callable[[list[Incoming]], None]
"""PUBACK these messages (they are settled: durably written, or dropped for good)."""


def _decode_json(data: bytes) -> Any:
    """orjson at once for the usual payload; the codec (its size limit, BOM, error messages) else."""
    if len(data) <= DEFAULT_LIMITS.max_bytes and not data.startswith(codecs.BOM_UTF8):
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass  # the codec raises it again, with its code and message
    return decode("json", data)


@dataclass(slots=True)
class _Group:
    """Messages of one topic template and variant (or of one topic), published as one envelope."""

    route: CompiledRoute
    messages: list[Incoming] = field(default_factory=list)
    payloads: list[Any] = field(default_factory=list)
    parts_by_topic: dict[str, dict[str, str]] = field(default_factory=dict)  # parts depend on the topic only

    def add(self, message: Incoming, payload: Any, parts: dict[str, str]) -> None:
        self.messages.append(message)
        self.payloads.append(payload)
        self.parts_by_topic[message.topic] = parts

    def shared_parts(self) -> dict[str, str]:
        """The topic parts every message has in common (all of them when there is one topic)."""
        first, *others = self.parts_by_topic.values()
        shared = dict(first)
        for parts in others:
            shared = {k: v for k, v in shared.items() if parts.get(k) == v}
        return shared


class MqttConnector:
    Config: ClassVar[type[MqttOptions]] = MqttOptions
    pushes_over_http: ClassVar[bool] = False

    def __init__(self, connector_id: str, config: MqttOptions, context: ConnectorContext) -> None:
        self.connector_id = connector_id
        self.config = config
        self._instance = context.instance
        self.routes = [compile_route(r, config.share_group) for r in config.topics]
        self.router = TopicRouter(self.routes, envelope_per_topic=config.envelope_per_topic)
        codecs = {r.codec for r in config.topics}
        devices = load_registry(config.device_registry) if config.device_registry else {}
        self.devices = DeviceBook(devices, expected_interval_s=config.expected_interval_s,
                                  intervals_s=config.device_intervals_s, silence_factor=config.silence_factor)
        if codecs & _VIDEO and config.label_table is None:
            raise ConfigError("label_table: video topics need the label table (which labels are supervision events)")
        labels = load_labels(config.label_table) if config.label_table else {}
        self.events = EventFilter(labels, config.duplicate_window_s)
        self.windows = EventWindows(context.state, self.events)
        self.camera_regions = load_camera_regions(config.camera_registry) if config.camera_registry else {}
        self.telemetry = context.telemetry
        # Also kept here (tests, `device_status` callers); names are a fixed set, never payload values.
        self.counters: dict[str, int] = {}
        self.recent_rejections: deque[dict[str, Any]] = deque(maxlen=100)
        self.bridge: MqttBridge | None = None
        self._gauged: set[tuple[str, str]] = set()

    # -- what the runtime can expose --------------------------------------------------------------

    def device_status(self) -> dict[str, dict[str, Any]]:
        return self.devices.snapshot()

    def _count(self, name: str, n: int = 1) -> None:
        self.counters[name] = self.counters.get(name, 0) + n
        self.telemetry.count(name, n)

    def _session_options(self) -> MqttOptions:
        """The options the client connects with. In a shared subscription every instance is a client
        of its own: the instance's name is appended to the client id (the settings, and so the id, are
        shared through the registry), so instances never take over each other's session and each
        keeps its persistent session across its restarts."""
        if self.config.share_group is None or not self._instance:
            return self.config
        return self.config.model_copy(update={"client_id": f"{self.config.client_id}-{self._instance}"})

    # -- run ------------------------------------------------------------------------------------

    async def run(self, publish: Publish) -> None:
        loop = asyncio.get_running_loop()
        subscriptions: list[tuple[str, int]] = [(r.subscription, r.route.qos) for r in self.routes]
        await self.windows.load()
        self.telemetry.state("connecting")
        bridge = MqttBridge(self._session_options(), subscriptions, loop, self.telemetry)
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
            self.telemetry.state("stopped")

    async def _watch_silence(self) -> None:
        while True:
            self.report_devices()
            await asyncio.sleep(self.config.silence_check_s)

    def report_devices(self) -> None:
        """Mark devices silent past their interval; gauge the devices per status and region."""
        for device_id in self.devices.check_silence():
            self._count("devices_went_silent")
            log.warning("device %s silent for more than %.0f s (设备离线未上报)", device_id,
                        self.devices.silent_after_s(device_id))
        counts = self.devices.counts_by_region()
        for status, region in self._gauged - set(counts):
            self.telemetry.gauge(f"devices_{status}", 0, key=region)  # a level that emptied
        for (status, region), n in counts.items():
            self.telemetry.gauge(f"devices_{status}", n, key=region)
        self._gauged = set(counts)

    async def _consume(self, bridge: MqttBridge, publish: Publish) -> None:
        while True:
            batch = await bridge.inbox.batch(self.config.batch_max_messages, self.config.batch_max_wait_s)
            await self.handle(batch, publish, bridge.ack_all)

    async def handle(self, batch: list[Incoming], publish: Publish, ack: Ack) -> None:
        """Sort a batch into records to publish, state and drops; acknowledge each when settled."""
        groups: dict[tuple[str, str, str], _Group] = {}
        settled: list[Incoming] = []  # nothing to write: acknowledged before the batch's writes
        refused: list[tuple[CompiledRoute, Incoming, PayloadError]] = []  # to the rejections ledger
        # devices whose telemetry came: marked alive together, before any status message or await,
        # so the device state sees the batch in its order (a retained status replayed after a
        # device's first telemetry is older than it, and ignored)
        heard: list[str] = []

        def acknowledge(messages: list[Incoming]) -> None:
            ack(messages)
            self._count("acks", len(messages))

        match_topic = self.router.match
        for message in batch:
            found = match_topic(message.topic)
            if found is None:
                self._count("unrouted")
                settled.append(message)
                continue
            parts = found.parts
            verdict: Verdict | None = None
            try:
                payload = self._decode(found.codec, message)
                if found.codec == "status":
                    self.devices.seen_all(heard)
                    heard.clear()
                    self._status(parts, payload, message)
                    settled.append(message)
                    continue
                if found.codec in _VIDEO:
                    verdict = self._judge_video(found.route, parts, payload, message)
                else:
                    heard.append(self._telemetry_check(parts, payload))
            except PayloadError as exc:
                self._reject(message, exc)  # a bad payload never gets better: no retry (contract)
                self._refused(found.route, message, exc, refused, settled)
                continue
            except Exception as exc:  # noqa: BLE001  # our bug meeting this payload: see _unprocessable
                self._refused(found.route, message, self._unprocessable(message, exc), refused, settled)
                continue
            if verdict is not None:
                self.devices.seen_all(heard)
                heard.clear()
                await self._video(found.route, parts, payload, message, verdict, publish, acknowledge)
                continue
            group = groups.get(found.group)
            if group is None:
                group = groups[found.group] = _Group(route=found.route)
            group.add(message, payload, parts)
        self.devices.seen_all(heard)
        if settled:
            acknowledge(settled)
        written: list[Incoming] = []
        if refused:
            await self._keep_refused(refused, publish)
            written.extend(message for _, message, _ in refused)
        for group in groups.values():
            await self._publish(group, publish)
            written.extend(group.messages)
        if written:
            acknowledge(written)
        self._count("messages", len(batch))  # handled: written or dropped, and acknowledged

    def _decode(self, codec: str, message: Incoming) -> Any:
        if len(message.payload) > self.config.max_payload_bytes:
            raise PayloadError("PAYLOAD_TOO_LARGE", f"{len(message.payload)} bytes > {self.config.max_payload_bytes}")
        if codec not in _JSON_OBJECT:
            return decode(_CODEC_FORMAT[codec], message.payload)
        payload = _decode_json(message.payload)
        if not isinstance(payload, dict):
            raise PayloadError("MALFORMED", "the message must be one JSON object")
        return payload

    def _device_id(self, parts: dict[str, str], payload: dict[str, Any]) -> str:
        return parts.get("device_id") or str(payload.get("deviceId") or payload.get("MN") or "")

    def _status(self, parts: dict[str, str], payload: dict[str, Any], message: Incoming) -> None:
        device_id = self._device_id(parts, payload)
        self.devices.status_message(device_id, payload, retained=message.retain)
        self._count(f"status_{payload.get('status')}")  # online | offline: status_message checked it

    def _telemetry_check(self, parts: dict[str, str], payload: dict[str, Any]) -> str:
        """The device that sent this telemetry, once its topic, body and the registry agree."""
        body_id = str(payload.get("deviceId") or payload.get("MN") or "")
        topic_id = parts.get("device_id")
        if topic_id and body_id and body_id != topic_id:
            raise PayloadError("IOT_DEVICE_MISMATCH", f"topic device {topic_id} but payload {body_id}")
        device_id = topic_id or body_id  # as _device_id has it
        if code := self.devices.region_problem(device_id, parts.get("region")):
            raise PayloadError(code, f"topic region {parts.get('region')} differs from the registry's for {device_id}")
        return device_id

    def _judge_video(self, route: CompiledRoute, parts: dict[str, str], payload: Any, message: Incoming) -> Verdict:
        facts = json_event_facts(payload) if route.route.codec == "video_event" else gb28181_facts(payload)
        region = self.camera_regions.get(facts[1])
        if region and parts.get("region") and region != parts["region"]:
            raise PayloadError("VIDEO_REGION_MISMATCH",
                               f"topic region {parts['region']} differs from camera {facts[1]}'s")
        return self.events.judge(facts, message.received_at)

    async def _video(self, route: CompiledRoute, parts: dict[str, str], payload: Any, message: Incoming,
                     verdict: Verdict, publish: Publish, ack: Ack) -> None:
        if not verdict.keep:
            self._count(f"events_dropped_{verdict.reason}")
            ack([message])
            return
        # The window opens durably before the write: after a crash in between, the broker redelivers
        # this same event (same id, so it passes) and later repeats stay suppressed.
        await self._until_stored(lambda: self.windows.open(verdict), 1)
        group = _Group(route=route, messages=[message], payloads=[payload], parts_by_topic={message.topic: parts})
        receipt = await self._publish(group, publish)
        if receipt.rejected and not (receipt.accepted or receipt.duplicate):
            # Rejected (its department fixes it): a corrected repeat of the incident must not be
            # dropped as a repeat of a record the gateway does not hold.
            await self._until_stored(lambda: self.windows.withdraw(verdict), 1)
        self._count("events_published")
        ack([message])

    def _unprocessable(self, message: Incoming, exc: Exception) -> PayloadError:
        """A message that made sorting fail in a way no payload should (a bug of ours): refused and
        acknowledged like a bad payload, with the error logged in full. Raised, it would stop the
        connector, and the broker would redeliver it to the same end, holding every message behind."""
        log.error("mqtt message could not be processed (报文无法处理): topic %s", message.topic, exc_info=exc)
        name = type(exc).__name__
        refused = PayloadError("UNPROCESSABLE", f"处理报文时出错（{name}）/ the gateway failed on the message ({name})")
        self._reject(message, refused)
        return refused

    @staticmethod
    def _refused(route: CompiledRoute, message: Incoming, exc: PayloadError,
                 refused: list[tuple[CompiledRoute, Incoming, PayloadError]], settled: list[Incoming]) -> None:
        """A refused message to keep in the rejections ledger; a status message (device state, not
        a record) has nothing to keep, so it is settled at once."""
        if route.route.codec == "status":
            settled.append(message)
        else:
            refused.append((route, message, exc))

    async def _keep_refused(self, refused: list[tuple[CompiledRoute, Incoming, PayloadError]],
                            publish: Publish) -> None:
        """Refused messages into the rejections ledger with their bytes (HJ 212 passwords masked),
        written before they are acknowledged: a device cannot be answered, so the ledger is where its
        department sees what it sent. One write per route for the batch (a device sending garbage
        costs a row each, not a transaction each)."""
        by_route: dict[int, tuple[CompiledRoute, list[Incoming], list[Refusal]]] = {}
        for route, message, exc in refused:
            raw = message.payload if route.route.codec != "hj212" else mask_password(message.payload)
            where = f"topic {message.topic}" + ("" if exc.location is None else f" {exc.location}")
            _, messages, refusals = by_route.setdefault(id(route), (route, [], []))
            messages.append(message)
            refusals.append(Refusal(exc.code, str(exc), raw=raw, location=where))
        for route, messages, refusals in by_route.values():
            envelope = Envelope(connector=self.connector_id, payload=None, refused=tuple(refusals),
                                received_at=datetime.fromtimestamp(messages[0].received_at, UTC),
                                meta={"variant": route.route.effective_variant,
                                      "location": f"topic {route.subscription}"})
            await self._until_stored(partial(publish, envelope), len(messages))
            self._count("records_rejected", len(messages))

    def _reject(self, message: Incoming, exc: PayloadError) -> None:
        self._count(f"rejected_{exc.code}")
        entry = {"topic": message.topic, "code": exc.code, "message": str(exc),
                 "at": datetime.fromtimestamp(message.received_at, UTC).isoformat()}
        self.recent_rejections.append(entry)
        log.warning("mqtt message rejected (报文被拒收): topic %s: %s %s", message.topic, exc.code, exc)

    def envelope_for(self, group: _Group) -> Envelope:
        first = group.messages[0]
        received = datetime.fromtimestamp(first.received_at, UTC)
        meta: dict[str, Any] = {**group.shared_parts(), "variant": group.route.route.effective_variant}
        if len(group.parts_by_topic) == 1:
            meta.update(topic=first.topic, location=f"topic {first.topic}")
        else:  # each record's own payload (kept raw with a rejection) names its device
            meta.update(location=f"topic {group.route.subscription}")
        single = len(group.payloads) == 1
        # HJ 212 raw bytes hold the password: the codec's masked packet is in the payload instead.
        raw = first.payload if single and group.route.route.codec != "hj212" else None
        return Envelope(connector=self.connector_id, payload=group.payloads[0] if single else list(group.payloads),
                        received_at=received, meta=meta, raw=raw, records_inline=not single)

    async def _publish(self, group: _Group, publish: Publish) -> PublishReceipt:
        """Publish until the durable write succeeds: nothing is acknowledged before that."""
        envelope = self.envelope_for(group)
        receipt = await self._until_stored(lambda: publish(envelope), len(group.messages))
        self._count("records_accepted", receipt.accepted)
        self._count("records_rejected", receipt.rejected)
        self._count("records_duplicate", receipt.duplicate)
        return receipt

    async def _until_stored(self, write: Callable[[], Awaitable[_T]], waiting: int) -> _T:
        """Retry a durable write with backoff while the store is unavailable; the ``waiting``
        messages stay unacknowledged meanwhile, so the broker holds back the rest (backpressure)."""
        delay_s = self.config.store_retry_s
        while True:
            try:
                return await write()
            except StoreUnavailable as exc:
                self._count("store_unavailable")
                self.telemetry.error(f"store unavailable: {type(exc.__cause__ or exc).__name__}")
                log.warning("store unavailable; %d messages not acknowledged, retry in %.1f s: %s",
                            waiting, delay_s, exc.__cause__ or exc)
                await asyncio.sleep(delay_s)
                delay_s = min(delay_s * 2, self.config.store_retry_max_s)
