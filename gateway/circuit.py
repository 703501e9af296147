"""A circuit breaker per adapter: a dead target is probed, not hammered.

closed -> (``failure_threshold`` failed batches in a row) -> open -> (``open_s`` later) ->
half-open: one probe batch of one record -> delivered: closed | failed: open again, for twice as
long (up to ``max_open_s``). While open the worker claims nothing, so records wait in the outbox
(durably) and spend no attempts.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

CircuitState = Literal["closed", "open", "half_open"]


@dataclass
class CircuitBreaker:
    failure_threshold: int = 5
    open_s: float = 5.0
    max_open_s: float = 300.0
    clock: Callable[[], float] = time.monotonic
    _failures: int = field(default=0, init=False)
    _opened_at: float | None = field(default=None, init=False)
    _current_open_s: float = field(default=0.0, init=False)

    @property
    def state(self) -> CircuitState:
        if self._opened_at is None:
            return "closed"
        return "half_open" if self.clock() >= self._opened_at + self._current_open_s else "open"

    def allowance(self, batch_size: int) -> int:
        """How many records the worker may send now: all, one probe, or none."""
        state = self.state
        return batch_size if state == "closed" else 1 if state == "half_open" else 0

    def wait_s(self) -> float:
        """Seconds until the next probe (0 when closed or half-open)."""
        if self._opened_at is None:
            return 0.0
        return max(0.0, self._opened_at + self._current_open_s - self.clock())

    def record_success(self) -> None:
        self._failures = 0
        self._opened_at = None
        self._current_open_s = 0.0

    def record_failure(self) -> None:
        was_probe = self.state == "half_open"
        self._failures += 1
        if was_probe:
            self._current_open_s = min(self._current_open_s * 2, self.max_open_s)
            self._opened_at = self.clock()
        elif self._opened_at is None and self._failures >= self.failure_threshold:
            self._current_open_s = self.open_s
            self._opened_at = self.clock()
