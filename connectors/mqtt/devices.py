"""The device registry and each device's state: status topic, Last Will, and silence.

The registry (GBK CSV of the iot-mqtt contract) binds a device to its supervised enterprise and
region. Status messages are state, not records (last value wins; retained ones replay on every
subscribe). A registered, active device that stays silent past ``factor x`` its expected interval
is reported as ``silent`` (its status, and the ``devices_silent`` gauge of its region) so operations
see dead sensors; telemetry or a live status message brings it back ``online``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from connectors.codecs import decode
from gateway.errors import ConfigError, PayloadError

ACTIVE = "在用"
MAX_UNREGISTERED = 1000  # states kept for devices not in the registry (their ids come from payloads)


@dataclass(frozen=True, slots=True)
class Device:
    device_id: str
    enterprise_uscc: str
    region: str
    active: bool
    access: str = ""


@dataclass(slots=True)
class DeviceState:
    status: str = "never_seen"  # online | offline | silent | never_seen
    reason: str | None = None
    since: float | None = None  # epoch s of the last status change
    last_seen: float | None = None  # epoch s of the last telemetry or status from the device
    firmware: str | None = None


def load_registry(path: Path) -> dict[str, Device]:
    """Devices by id from the contract's registry CSV (GBK, CRLF)."""
    try:
        rows = decode("csv", path.read_bytes(), encoding="gbk")
    except OSError as exc:
        raise ConfigError(f"device_registry: cannot read {path}: {exc.strerror}") from exc
    except PayloadError as exc:
        raise ConfigError(f"device_registry: {path}: {exc.code} {exc}") from exc
    return devices_from_rows(rows)


def devices_from_rows(rows: Iterable[Mapping[str, str]]) -> dict[str, Device]:
    out: dict[str, Device] = {}
    for i, row in enumerate(rows, start=1):
        device_id = (row.get("设备编号") or row.get("MN号") or "").strip()
        if not device_id:
            raise ConfigError(f"device_registry: row {i}: 设备编号 is empty")
        out[device_id] = Device(device_id=device_id, enterprise_uscc=row.get("统一社会信用代码", "").strip(),
                                region=row.get("行政区划代码", "").strip(),
                                active=row.get("状态", "").strip() == ACTIVE, access=row.get("接入方式", "").strip())
    return out


class DeviceBook:
    """Registry plus state. Not thread-safe: used from the event loop only."""

    def __init__(self, devices: Mapping[str, Device], *, expected_interval_s: float,
                 intervals_s: Mapping[str, float] | None = None, silence_factor: float = 3.0,
                 clock: Callable[[], float] = time.time) -> None:
        self._devices = dict(devices)
        self._default_interval_s = expected_interval_s
        self._intervals_s = dict(intervals_s or {})
        self._factor = silence_factor
        self._clock = clock
        self._started = clock()
        self._states: dict[str, DeviceState] = {}
        self._unregistered = 0

    # -- registry (editable: the API replaces or edits entries later) ----------------------------

    def get(self, device_id: str) -> Device | None:
        return self._devices.get(device_id)

    def upsert(self, device: Device) -> None:
        self._devices[device.device_id] = device

    def replace_all(self, devices: Mapping[str, Device]) -> None:
        self._devices = dict(devices)

    def region_problem(self, device_id: str, topic_region: str | None) -> str | None:
        """``IOT_REGION_MISMATCH`` when the topic's region differs from the registry's.

        Unknown and 停用 devices are left to the mapping, which rejects them into the ledger."""
        device = self._devices.get(device_id)
        if device is None or topic_region is None or not device.region or device.region == topic_region:
            return None
        return "IOT_REGION_MISMATCH"

    # -- state -----------------------------------------------------------------------------------

    def _state(self, device_id: str) -> DeviceState | None:
        """The device's state; None for one more unregistered device past ``MAX_UNREGISTERED``."""
        state = self._states.get(device_id)
        if state is None:
            if device_id not in self._devices:
                if self._unregistered >= MAX_UNREGISTERED:
                    return None
                self._unregistered += 1
            state = self._states[device_id] = DeviceState()
        return state

    def seen(self, device_id: str) -> None:
        """Telemetry arrived: the device is alive."""
        self.seen_all((device_id,))

    def seen_all(self, device_ids: Iterable[str]) -> None:
        """Telemetry arrived from these devices (a batch's, repeats and all): they are alive."""
        now = self._clock()
        for device_id in dict.fromkeys(device_ids):
            state = self._state(device_id)
            if state is None:
                continue
            state.last_seen = now
            if state.status in ("never_seen", "silent"):
                state.status, state.reason, state.since = "online", "telemetry", now

    def status_message(self, device_id: str, payload: Mapping[str, Any], *, retained: bool) -> None:
        """A status topic message (online, offline by shutdown, or the Last Will)."""
        now = self._clock()
        status = str(payload.get("status", "")).lower()
        if status not in ("online", "offline"):
            raise PayloadError("MALFORMED", f"status {payload.get('status')!r} is not online/offline")
        state = self._state(device_id)
        if state is None:
            return
        if retained and state.since is not None:
            return  # a replay on resubscribe: what we saw live is newer
        # The LWT was fixed at CONNECT (its ts is the connect time): the offline time is now.
        at = now if status == "offline" or not isinstance(payload.get("ts"), int) else payload["ts"] / 1000
        state.status, state.reason, state.since = status, str(payload.get("reason") or ""), at
        if not retained:
            state.last_seen = now
        if fw := payload.get("fw"):
            state.firmware = str(fw)

    def interval_s(self, device_id: str) -> float:
        return self._intervals_s.get(device_id, self._default_interval_s)

    def silent_after_s(self, device_id: str) -> float:
        return self._factor * self.interval_s(device_id)

    def check_silence(self) -> list[str]:
        """Mark registered, active devices silent past their limit; return the newly silent ones."""
        now = self._clock()
        newly: list[str] = []
        for device_id, device in self._devices.items():
            if not device.active:
                continue
            state = self._states.setdefault(device_id, DeviceState())
            if state.status in ("silent", "offline"):
                continue  # offline is already known to ops from the device itself
            last = state.last_seen if state.last_seen is not None else self._started
            if now - last > self.silent_after_s(device_id):
                state.status, state.reason, state.since = "silent", "no data", now
                newly.append(device_id)
        return newly

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """Every known device's state, for the API and metrics."""
        out: dict[str, dict[str, Any]] = {}
        for device_id in sorted(set(self._devices) | set(self._states)):
            state = replace(self._states.get(device_id) or DeviceState())
            device = self._devices.get(device_id)
            out[device_id] = {
                "status": state.status, "reason": state.reason, "since": state.since, "last_seen": state.last_seen,
                "firmware": state.firmware, "registered": device is not None,
                "active": bool(device and device.active), "region": device.region if device else None,
                "enterprise_uscc": device.enterprise_uscc if device else None,
                "expected_interval_s": self.interval_s(device_id),
            }
        return out

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for item in self.snapshot().values():
            counts[item["status"]] = counts.get(item["status"], 0) + 1
        return counts

    def counts_by_region(self) -> dict[tuple[str, str], int]:
        """Devices per (status, region) for gauges: a bounded key (the registry's regions, and
        ``unregistered`` for devices that report without being in it), never a device id."""
        counts: dict[tuple[str, str], int] = {}
        for device_id in set(self._devices) | set(self._states):
            device = self._devices.get(device_id)
            if device is not None and not device.active:
                continue  # 停用: not watched, not counted
            state = self._states.get(device_id)
            key = (state.status if state else "never_seen", device.region or "unknown" if device else "unregistered")
            counts[key] = counts.get(key, 0) + 1
        return counts
