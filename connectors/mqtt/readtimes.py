"""Stable read times for redelivered messages.

``submitted_at`` is the time the gateway read a message, and it is part of a record's content
(and so of its id). A message written durably but not yet acknowledged when the gateway died is
redelivered after the restart; read again at a new time it would become a second version of the
same reading. So before each durable write the connector notes which messages (by digest) it is
writing with which read time, in its durable state (a small ring of recent writes); a
redelivered message gets its first read time back and ingest sees an identical copy.
"""

from __future__ import annotations

import hashlib
from typing import Any

from connectors.base import ConnectorState

RING_SLOTS = 32


def digest(topic: str, payload: bytes) -> str:
    return hashlib.blake2b(topic.encode() + b"\0" + payload, digest_size=8).hexdigest()


class ReadTimes:
    def __init__(self, state: ConnectorState) -> None:
        self._state = state
        self._known: dict[str, float] = {}
        self._slots: list[list[str]] = [[] for _ in range(RING_SLOTS)]
        self._slot = 0

    async def load(self) -> None:
        for slot in range(RING_SLOTS):
            entry: Any = await self._state.load(f"readtimes/{slot}")
            if isinstance(entry, dict) and isinstance(entry.get("at"), (int, float)):
                self._remember(slot, [str(key) for key in entry.get("h") or ()], float(entry["at"]))

    def first_read(self, key: str) -> float | None:
        return self._known.get(key)

    async def note(self, keys: list[str], at: float) -> None:
        """Record the read time of a group before it is written (one small upsert per group)."""
        await self._state.save(f"readtimes/{self._slot}", {"at": at, "h": keys})
        self._remember(self._slot, keys, at)  # also for redeliveries after a reconnect in this run
        self._slot = (self._slot + 1) % RING_SLOTS

    def _remember(self, slot: int, keys: list[str], at: float) -> None:
        for old in self._slots[slot]:
            self._known.pop(old, None)
        self._slots[slot] = keys
        for key in keys:
            self._known[key] = at
