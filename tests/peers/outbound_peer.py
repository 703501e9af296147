"""What every fake peer shares: an aiohttp.web app on a free local port, and fault injection."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self

from aiohttp import web

from tests.conftest import free_port


@dataclass
class Faults:
    """Faults to inject, consumed request by request (counts) or by time (unavailable_until)."""

    fail_next: int = 0
    fail_status: int = 500
    rate_limit_next: int = 0
    rate_limit_retry_after_s: int = 1
    unavailable_until: float = 0.0
    unavailable_retry_after_s: int | None = None
    delay_s: float = 0.0
    lose_answers_next: int = 0
    rejected: dict[str, tuple[str, str, str | None]] = field(default_factory=dict)


class PeerServer:
    """Start/stop an aiohttp app on 127.0.0.1 and expose fault controls."""

    def __init__(self, client_max_size: int) -> None:
        self.faults = Faults()
        self._client_max_size = client_max_size
        self._runner: web.AppRunner | None = None
        self.url = ""

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    async def start(self) -> str:
        app = web.Application(client_max_size=self._client_max_size)
        self.routes(app)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        port = free_port()
        await web.TCPSite(self._runner, "127.0.0.1", port).start()
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.stop()

    # -- fault controls ---------------------------------------------------------------------------

    def fail(self, times: int, status: int = 500) -> None:
        self.faults.fail_next, self.faults.fail_status = times, status

    def rate_limit(self, times: int, retry_after_s: int) -> None:
        self.faults.rate_limit_next, self.faults.rate_limit_retry_after_s = times, retry_after_s

    def unavailable_for(self, seconds: float, retry_after_s: int | None = None) -> None:
        self.faults.unavailable_until = time.monotonic() + seconds
        self.faults.unavailable_retry_after_s = retry_after_s

    def slow(self, delay_s: float) -> None:
        self.faults.delay_s = delay_s

    def lose_answers(self, times: int) -> None:
        """Process and store the next ``times`` requests, then answer 502 as if the answer was lost."""
        self.faults.lose_answers_next = times

    def reject(self, local_id: str, code: str, message: str, field: str | None = None) -> None:
        self.faults.rejected[local_id] = (code, message, field)

    async def transport_fault(self) -> tuple[int, int | None] | None:
        """(status, Retry-After) of an injected transport-level fault for this request, if any."""
        if self.faults.delay_s:
            await asyncio.sleep(self.faults.delay_s)
        if time.monotonic() < self.faults.unavailable_until:
            return 503, self.faults.unavailable_retry_after_s
        if self.faults.fail_next > 0:
            self.faults.fail_next -= 1
            return self.faults.fail_status, None
        if self.faults.rate_limit_next > 0:
            self.faults.rate_limit_next -= 1
            return 429, self.faults.rate_limit_retry_after_s
        return None

    def answer_lost(self) -> bool:
        if self.faults.lose_answers_next > 0:
            self.faults.lose_answers_next -= 1
            return True
        return False
