"""Time windows over the source's update time (GXSJ) and the cursor that remembers them.

The cursor of an operation is the end of its last fully read window. The next window starts
``overlap_s`` before it, so records committed late with an earlier GXSJ are still read; ingest
drops the re-read copies (same record id).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

BEIJING = ZoneInfo("Asia/Shanghai")
SOURCE_FORMAT = "%Y%m%d%H%M%S"


@dataclass(frozen=True, slots=True)
class Window:
    """``[start, end)`` in Beijing time, as the source's startTime (inclusive) / endTime (exclusive)."""

    start: datetime
    end: datetime

    @property
    def start_text(self) -> str:
        return source_time(self.start)

    @property
    def end_text(self) -> str:
        return source_time(self.end)


def source_time(moment: datetime) -> str:
    """``yyyyMMddHHmmss`` in Beijing time."""
    return moment.astimezone(BEIJING).strftime(SOURCE_FORMAT)


def cursor_key(operation: str) -> str:
    return f"cursor:{operation}"


def encode_cursor(moment: datetime) -> str:
    return moment.astimezone(BEIJING).isoformat(timespec="seconds")


def decode_cursor(value: object) -> datetime | None:
    """The stored cursor, or None when there is none (or it is unreadable: start again from config)."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=BEIJING)


def next_window(cursor: datetime | None, *, start_time: datetime, now: datetime, window_s: int,
                overlap_s: int) -> Window | None:
    """The window to read next, or None when there is nothing to read yet.

    Whole seconds only: the source's times have no fraction, and a window must not end on a
    fraction that the next one would truncate backwards.
    """
    start = start_time if cursor is None else cursor - timedelta(seconds=overlap_s)
    start = start.replace(microsecond=0)
    end = min(start + timedelta(seconds=window_s), now.replace(microsecond=0))
    if end <= start:
        return None
    return Window(start=start.astimezone(BEIJING), end=end.astimezone(BEIJING))
