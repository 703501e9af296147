"""What every fake REST source shares: a real aiohttp server on 127.0.0.1, a log of the requests
it answered, and fault injection (fail N times with a status, Retry-After, HTML bodies, slowness)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

from aiohttp import web

from tests.conftest import free_port

HTML_502 = "<html><head><title>502 Bad Gateway</title></head><body><center>nginx</center></body></html>"


@dataclass
class Fault:
    status: int
    retry_after: str | None = None
    html: bool = False
    body: Any = None
    delay_s: float = 0.0


@dataclass
class Hit:
    at: float
    method: str
    path: str
    query: dict[str, str]
    status: int


@dataclass
class Faults:
    """Faults by path prefix, used up in order (one per request)."""

    queued: list[tuple[str, Fault]] = field(default_factory=list)

    def add(self, path: str, fault: Fault, times: int = 1) -> None:
        self.queued.extend((path, fault) for _ in range(times))

    def take(self, path: str) -> Fault | None:
        for i, (prefix, fault) in enumerate(self.queued):
            if path.startswith(prefix):
                del self.queued[i]
                return fault
        return None


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, text=json.dumps(body, ensure_ascii=False),
                        content_type="application/json", headers=headers)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class PeerServer:
    """Subclasses add routes in ``routes`` and answer from their own data."""

    def __init__(self) -> None:
        self.hits: list[Hit] = []
        self.faults = Faults()
        self.app = web.Application(middlewares=[self._middleware])
        self.routes(self.app)
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    def fail(self, path: str, status: int, times: int = 1, *, retry_after: str | None = None, html: bool = False,
             body: Any = None) -> None:
        self.faults.add(path, Fault(status=status, retry_after=retry_after, html=html, body=body), times)

    def slow(self, path: str, delay_s: float, times: int = 1) -> None:
        self.faults.add(path, Fault(status=0, delay_s=delay_s), times)

    def hits_on(self, path: str) -> list[Hit]:
        return [h for h in self.hits if h.path.startswith(path)]

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        fault = self.faults.take(request.path)
        if fault is not None and fault.delay_s:
            await asyncio.sleep(fault.delay_s)
        if fault is not None and fault.status:
            response: web.StreamResponse = self._fault_response(fault)
        else:
            response = await handler(request)
        self.hits.append(Hit(time.monotonic(), request.method, request.path, dict(request.query), response.status))
        return response

    @staticmethod
    def _fault_response(fault: Fault) -> web.Response:
        headers = {"Retry-After": fault.retry_after} if fault.retry_after else None
        if fault.html:
            return web.Response(status=fault.status, text=HTML_502, content_type="text/html", headers=headers)
        body = fault.body if fault.body is not None else {"code": "INTERNAL_ERROR", "message": "fault injected"}
        return json_response(body, fault.status, headers)

    async def __aenter__(self) -> Self:
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        port = free_port()
        await web.TCPSite(self._runner, "127.0.0.1", port).start()
        self.base_url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
