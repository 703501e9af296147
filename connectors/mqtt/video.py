"""Which video detections become supervision events, and collapsing a camera's repeats.

The contract's label table decides: 监管事件 = Y and confidence >= the label's minimum. GB/T 28181
alarms carry no confidence; their label is the edge-AI ``[label]`` prefix, else (2,1) video_loss,
(5,11) camera_occlusion, else ``gb28181:{method}/{type}`` which no table holds (dropped, counted).
Events of one camera + label within the window after the first are suppressed. The windows are
kept in the connector's durable state (``EventWindows``), so a restart does not reopen them: the
record-id dedupe downstream only catches a resent copy of one event (same content), never a repeat
firing, which has its own event id and time.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from connectors.base import ConnectorState
from connectors.codecs import decode
from gateway.errors import ConfigError, PayloadError

SHANGHAI = timezone(timedelta(hours=8))
_LABEL_PREFIX = re.compile(r"^\[([A-Za-z0-9_]+)\]")
_GB_LABELS = {("2", "1"): "video_loss", ("5", "11"): "camera_occlusion"}
MAX_WINDOWS = 5_000  # open windows kept (camera + label pairs); the oldest go first past it


@dataclass(frozen=True, slots=True)
class Label:
    code: str
    supervision: bool
    min_confidence: Decimal


@dataclass(frozen=True, slots=True)
class Verdict:
    keep: bool
    reason: str  # supervision | not_supervision | low_confidence | unmapped_label | suppressed_duplicate
    label: str
    camera_id: str
    event_id: str
    occurred_at: float | None  # epoch s


def _read_csv(path: Path, what: str) -> list[dict[str, str]]:
    try:
        rows: list[dict[str, str]] = decode("csv", path.read_bytes(), encoding="gbk")
    except OSError as exc:
        raise ConfigError(f"{what}: cannot read {path}: {exc.strerror}") from exc
    except PayloadError as exc:
        raise ConfigError(f"{what}: {path}: {exc.code} {exc}") from exc
    return rows


def load_labels(path: Path) -> dict[str, Label]:
    out: dict[str, Label] = {}
    for i, row in enumerate(_read_csv(path, "label_table"), start=1):
        try:
            minimum = Decimal(row["最低置信度"].strip())
        except (KeyError, InvalidOperation) as exc:
            raise ConfigError(f"label_table: row {i}: 最低置信度 is not a number") from exc
        code = row.get("标签代码", "").strip()
        out[code] = Label(code=code, supervision=row.get("是否监管事件", "").strip().upper() == "Y",
                          min_confidence=minimum)
    return out


def load_camera_regions(path: Path) -> dict[str, str]:
    """Camera id -> region (行政区划代码), for the topic-region check."""
    return {row["摄像机编码"].strip(): row.get("行政区划代码", "").strip()
            for row in _read_csv(path, "camera_registry") if row.get("摄像机编码")}


def _epoch(text: Any) -> float | None:
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text.strip().replace(" ", "T"))
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=SHANGHAI)).timestamp()


def _confidence(value: Any) -> Decimal | None:
    """The confidence as a number; None when it is not one (the mapping refuses the event then).

    NaN and infinities are not numbers either: ``Decimal("NaN") < x`` raises, and one such event
    would stop the connector on every redelivery."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def json_event_facts(payload: Any) -> tuple[str, str, str, float | None, Decimal | None]:
    """(label, camera, event id, occurred epoch s, confidence) of a JSON event."""
    if not isinstance(payload, Mapping):
        raise PayloadError("MALFORMED", "a video event must be a JSON object")
    return (str(payload.get("label") or ""), str(payload.get("cameraId") or ""), str(payload.get("eventId") or ""),
            _epoch(payload.get("eventTime")), _confidence(payload.get("confidence")))


def gb28181_facts(payload: Any) -> tuple[str, str, str, float | None, Decimal | None]:
    """(label, camera, event id, occurred epoch s, None) of an Alarm Notify tree."""
    if not isinstance(payload, Mapping) or str(payload.get("CmdType", "")).strip() != "Alarm":
        raise PayloadError("MALFORMED", "not a GB/T 28181 Alarm Notify")
    method = str(payload.get("AlarmMethod") or "").strip()
    info = payload.get("Info")
    alarm_type = str(info.get("AlarmType") or "").strip() if isinstance(info, Mapping) else ""
    description = str(payload.get("AlarmDescription") or "")
    if found := _LABEL_PREFIX.match(description.strip()):
        label = found.group(1)
    else:
        unmapped = f"gb28181:{method}/{alarm_type}" if alarm_type else f"gb28181:{method}"
        label = _GB_LABELS.get((method, alarm_type), unmapped)
    device = str(payload.get("DeviceID") or "").strip()
    time_text = str(payload.get("AlarmTime") or "").strip()
    return label, device, f"{device}-{time_text}-{method}", _epoch(time_text), None


class EventFilter:
    """The label table filter and the per camera + label suppression window (in memory; see
    ``EventWindows`` for their durable copy)."""

    def __init__(self, labels: Mapping[str, Label], window_s: float, *, max_windows: int = MAX_WINDOWS) -> None:
        self._labels = dict(labels)
        self._window_s = window_s
        self._max_windows = max_windows
        # (camera, label) -> (occurred epoch s, event id) of the event that opened the window
        self._first: dict[tuple[str, str], tuple[float, str]] = {}

    def judge(self, facts: tuple[str, str, str, float | None, Decimal | None], received_s: float) -> Verdict:
        label, camera, event_id, occurred, confidence = facts
        at = occurred if occurred is not None else received_s

        def verdict(keep: bool, reason: str) -> Verdict:
            return Verdict(keep=keep, reason=reason, label=label, camera_id=camera, event_id=event_id, occurred_at=at)

        spec = self._labels.get(label)
        if spec is None:
            return verdict(False, "unmapped_label")
        if not spec.supervision:
            return verdict(False, "not_supervision")
        if confidence is not None and confidence < spec.min_confidence:
            return verdict(False, "low_confidence")
        first = self._first.get((camera, label))
        # The same event id again is a redelivery: ingest dedupes it, suppression must not eat it.
        if first is not None and first[1] != event_id and 0 <= at - first[0] < self._window_s:
            return verdict(False, "suppressed_duplicate")
        return verdict(True, "supervision")

    def published(self, verdict: Verdict) -> bool:
        """Open the window of a kept event; False when it was open already (nothing changed)."""
        key = (verdict.camera_id, verdict.label)
        first = self._first.get(key)
        if verdict.occurred_at is None:
            return False
        if first is not None and 0 <= verdict.occurred_at - first[0] < self._window_s:
            return False
        self._first.pop(key, None)  # re-inserted last: the dict stays in opening order
        self._first[key] = (verdict.occurred_at, verdict.event_id)
        self._prune(verdict.occurred_at)
        return True

    def withdraw(self, verdict: Verdict) -> bool:
        """Close the window this very event opened (it was rejected: its repeats are not repeats of
        a record the gateway holds); False when the window is another event's, or gone."""
        key = (verdict.camera_id, verdict.label)
        if self._first.get(key) != (verdict.occurred_at, verdict.event_id):
            return False
        del self._first[key]
        return True

    def _prune(self, now_s: float) -> None:
        """Drop closed windows from the oldest end, and the oldest open ones past ``max_windows``."""
        while self._first:
            key = next(iter(self._first))
            if now_s - self._first[key][0] < self._window_s and len(self._first) <= self._max_windows:
                break
            del self._first[key]

    def export(self) -> list[list[Any]]:
        """The open windows as JSON: ``[camera, label, occurred epoch s, event id]``, oldest first."""
        return [[camera, label, at, event] for (camera, label), (at, event) in self._first.items()]

    def restore(self, entries: Any) -> None:
        """Windows from ``export`` (entries of another shape are skipped: stored state is input too)."""
        for entry in entries if isinstance(entries, list) else ():
            if (isinstance(entry, list) and len(entry) == 4 and isinstance(entry[2], (int, float))
                    and all(isinstance(part, str) for part in (entry[0], entry[1], entry[3]))):
                self._first[(entry[0], entry[1])] = (float(entry[2]), entry[3])
        while len(self._first) > self._max_windows:
            del self._first[next(iter(self._first))]


class EventWindows:
    """The filter's windows in the connector's durable state, saved whenever one opens.

    Saved before the event's write: if the gateway dies in between, the broker redelivers the same
    event (same id: it passes) and later repeats stay suppressed. One JSON value, bounded by
    ``EventFilter``'s ``max_windows``; windows long closed are harmless (they no longer match).
    """

    KEY = "video/windows"

    def __init__(self, state: ConnectorState, events: EventFilter) -> None:
        self._state = state
        self._events = events

    async def load(self) -> None:
        self._events.restore(await self._state.load(self.KEY))

    async def open(self, verdict: Verdict) -> None:
        if self._events.published(verdict):
            await self._state.save(self.KEY, self._events.export())

    async def withdraw(self, verdict: Verdict) -> None:
        if self._events.withdraw(verdict):
            await self._state.save(self.KEY, self._events.export())
