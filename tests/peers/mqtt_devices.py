"""Device and camera simulators that publish to a real Mosquitto, as the iot-mqtt and video-ai
contracts describe: JSON telemetry, HJ 212 packets, status with a Last Will, AI events and
GB/T 28181 Alarm Notify bodies. Messages carry unique ids so tests can count them exactly.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from connectors.codecs import encode_hj212
from tests.peers.mqtt_load import QosOnePublisher

SHANGHAI = timezone(timedelta(hours=8))
# 2025-01-01T00:00:00+08:00: observation times count up from here, one second per message.
BASE_TS_MS = 1735660800000
JSON_DEVICES = (("330106", "YY3301060000771"), ("330122", "YC3301220000312"))
HJ212_DEVICES = (("YR330111000001WS0001", "32"), ("ZY330111000002FQ0001", "31"), ("SW330111000003WS0001", "32"))


def telemetry_json(device_id: str, ts_ms: int, *, data_type: str = "rtd", value: float = 2.8,
                   msg_id: str | None = None, sent_ns: int | None = None) -> bytes:
    body: dict[str, Any] = {"msgId": msg_id or str(uuid.uuid4()), "deviceId": device_id, "ts": ts_ms,
                            "dataType": data_type,
                            "metrics": [{"code": "a34013", "name": "颗粒物", "value": value, "unit": "mg/m3",
                                         "flag": "N"}]}
    if sent_ns is not None:
        body["sentNs"] = sent_ns  # for latency measurement; the mapping ignores it
    return orjson.dumps(body)


def beijing(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, SHANGHAI).strftime("%Y%m%d%H%M%S")


def hj212_packet(mn: str, st: str, ts_ms: int, *, cn: str = "2011", password: str = "123456") -> bytes:
    data_time = beijing(ts_ms)
    value_key = "Rtd" if cn == "2011" else "Avg"
    tree = {"QN": data_time + "000", "ST": st, "CN": cn, "PW": password, "MN": mn, "Flag": "4",
            "DataTime": data_time,
            "factors": [{"code": "w01018", value_key: "48.3", "Flag": "N"}, {"code": "w21003", value_key: "2.15",
                                                                            "Flag": "N"}]}
    return encode_hj212(tree).encode("ascii")


def status_json(device_id: str, status: str, reason: str, *, ts_ms: int | None = None) -> bytes:
    return orjson.dumps({"deviceId": device_id, "status": status, "reason": reason,
                         "ts": ts_ms if ts_ms is not None else int(time.time() * 1000), "fw": "2.3.1"})


def video_event(camera_id: str, label: str, confidence: float, event_time: datetime, *,
                event_id: str | None = None) -> bytes:
    local = event_time.astimezone(SHANGHAI)
    return orjson.dumps({
        "eventId": event_id or "AI" + local.strftime("%Y%m%d%H%M%S") + uuid.uuid4().hex[:8],
        "eventTime": local.strftime("%Y-%m-%d %H:%M:%S"), "cameraId": camera_id,
        "channelId": camera_id[:10] + "131" + camera_id[13:], "cameraName": "后厨热菜区", "scene": "kitchen",
        "label": label, "labelName": label, "confidence": confidence,
        "image": {"url": "https://vsp.example/snap/x.jpg", "width": 1920, "height": 1080},
        "bbox": [], "algorithmVersion": "sim-1"})


def gb28181_alarm(device_id: str, method: str, alarm_type: str, alarm_time: datetime, description: str) -> bytes:
    local = alarm_time.astimezone(SHANGHAI).strftime("%Y-%m-%dT%H:%M:%S")
    return (f'<?xml version="1.0" encoding="GB2312"?>\n<Notify>\n<CmdType>Alarm</CmdType>\n<SN>1</SN>\n'
            f"<DeviceID>{device_id}</DeviceID>\n<AlarmPriority>3</AlarmPriority>\n<AlarmMethod>{method}</AlarmMethod>\n"
            f"<AlarmTime>{local}</AlarmTime>\n<AlarmDescription>{description}</AlarmDescription>\n"
            f"<Info>\n<AlarmType>{alarm_type}</AlarmType>\n</Info>\n</Notify>\n").encode("gb18030")


class Publisher:
    """One simulated gateway-facing client (a device or the platform) publishing QoS 1."""

    def __init__(self, client_id: str, host: str = "127.0.0.1", port: int = 1883, *,
                 will: tuple[str, bytes] | None = None, max_inflight: int = 1000) -> None:
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv311)
        self.client.max_inflight_messages_set(max_inflight)
        self.client.max_queued_messages_set(0)
        if will is not None:
            self.client.will_set(will[0], will[1], qos=1, retain=True)
        self._connected = threading.Event()
        self.client.on_connect = lambda *args: self._connected.set()
        self.client.connect(host, port, keepalive=30)
        self.client.loop_start()
        if not self._connected.wait(10):
            raise TimeoutError("simulator could not connect to the broker")

    def publish(self, topic: str, payload: bytes, *, retain: bool = False, wait: bool = True) -> paho.MQTTMessageInfo:
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        if wait:
            info.wait_for_publish(10)
        return info

    def publish_at_rate(self, messages: Iterator[tuple[str, bytes]] | Sequence[tuple[str, bytes]],
                        rate_per_s: float | None, stop: threading.Event | None = None) -> int:
        """Publish at a steady rate (None: as fast as possible); wait for every PUBACK. Returns the count."""
        infos = []
        start = time.perf_counter()
        for n, (topic, payload) in enumerate(messages):
            if stop is not None and stop.is_set():
                break
            if rate_per_s is not None:
                delay = start + n / rate_per_s - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
            infos.append(self.client.publish(topic, payload, qos=1))
        for info in infos:
            info.wait_for_publish(60)
        return len(infos)

    def crash(self) -> None:
        """Drop the connection without DISCONNECT: the broker publishes the Last Will."""
        sock = self.client.socket()
        self.client.loop_stop()
        if sock is not None:
            sock.close()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def telemetry_stream(prefix: str, count: int, *, start: int = 0, with_sent_ns: bool = False,
                     hj212_every: int = 0) -> Iterator[tuple[str, bytes]]:
    """``count`` unique readings spread over the registered devices (one second apart per device)."""
    for n in range(start, start + count):
        if hj212_every and n % hj212_every == 0:
            mn, st = HJ212_DEVICES[n % len(HJ212_DEVICES)]
            yield f"{prefix}hj212/v1/{mn}/raw", hj212_packet(mn, st, BASE_TS_MS + n * 1000)
            continue
        region, device_id = JSON_DEVICES[n % len(JSON_DEVICES)]
        yield (f"{prefix}iot/v1/{region}/{device_id}/telemetry",
               telemetry_json(device_id, BASE_TS_MS + n * 1000, msg_id=f"m{n}",
                              sent_ns=time.time_ns() if with_sent_ns else None))


def publish_stream(port: int, prefix: str, start: int, count: int, rate_per_s: float | None,
                   max_inflight: int = 1000) -> list[float]:
    """Publish ``telemetry_stream(prefix, count, start=start)`` from a fresh client (made to run in
    a process of its own, so the simulator does not share the gateway's GIL); returns when every
    PUBACK is in, with each message's send time (epoch s) in order. The lean publisher of
    ``mqtt_load``, not paho: the load it generates should not cost what the gateway does."""
    device = QosOnePublisher(f"sim-{uuid.uuid4().hex[:8]}", port=port, max_inflight=max_inflight)
    try:
        return device.publish(telemetry_stream(prefix, count, start=start), rate_per_s)
    finally:
        device.close()


def source_record_id(n: int, hj212_every: int = 0) -> str:
    """The id ingest gives message ``n`` of ``telemetry_stream``."""
    ts = beijing(BASE_TS_MS + n * 1000)
    if hj212_every and n % hj212_every == 0:
        return f"{HJ212_DEVICES[n % len(HJ212_DEVICES)][0]}:2011:{ts}"
    return f"{JSON_DEVICES[n % len(JSON_DEVICES)][1]}:2011:{ts}"


def now_utc() -> datetime:
    return datetime.now(UTC)


@contextmanager
def private_mosquitto(workdir: Path, port: int, *, max_inflight: int = 1000) -> Iterator[int]:
    """A real Mosquitto on ``port`` with room for a long offline backlog (``max_queued_messages 0``:
    stock Mosquitto drops past 1,000 queued messages per session) and ``max_inflight`` unacknowledged
    messages per subscriber (stock: 20, which caps a gateway that acknowledges after its write)."""
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    conf = workdir / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
                    f"max_queued_messages 0\nmax_inflight_messages {max_inflight}\n", encoding="utf-8")
    broker = subprocess.Popen([binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                Publisher(f"probe-{uuid.uuid4().hex[:6]}", port=port).close()
                break
            except (OSError, TimeoutError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield port
    finally:
        broker.terminate()
        broker.wait(10)
