"""A fake peer (an aiohttp app) served from a thread of its own, for tests that drive real gateway
processes synchronously (subprocesses, kill -9) and still inject faults and read what it stored."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from types import TracebackType
from typing import Any, Generic, Self, TypeVar

from tests.peers.outbound_peer import PeerServer

P = TypeVar("P", bound=PeerServer)
T = TypeVar("T")


class ThreadedPeer(Generic[P]):
    def __init__(self, peer: P) -> None:
        self.peer = peer
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name="fake-peer")

    @property
    def url(self) -> str:
        return self.peer.url

    def call(self, coro: Coroutine[Any, Any, T], timeout_s: float = 10) -> T:
        """Run ``coro`` on the peer's loop (faults and reads there, without racing its handlers)."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout_s)

    def __enter__(self) -> Self:
        self._thread.start()
        self.call(self.peer.start())
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        try:
            self.call(self.peer.stop())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            self._loop.close()
