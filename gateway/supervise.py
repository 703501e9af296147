"""Supervisor loop: keep a plugin's long-running coroutine alive, with backoff between crashes."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable

from gateway.errors import ConfigError, PermanentError

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 60.0


async def supervise(name: str, run: Callable[[], Awaitable[None]], *, first_backoff_s: float = 1.0,
                    on_crash: Callable[[str, BaseException], None] | None = None) -> None:
    """Run ``run`` until it returns or is cancelled; restart it after a crash, backing off.

    A permanent error (bad credentials, bad config) stops the plugin: retrying cannot help, and
    spinning would lock accounts at the source.
    """
    backoff_s = first_backoff_s
    while True:
        try:
            await run()
            return
        except asyncio.CancelledError:
            raise
        except (PermanentError, ConfigError) as exc:
            log.error("%s stopped: %s", name, exc, extra={"plugin": name})
            if on_crash:
                on_crash(name, exc)
            return
        except Exception as exc:
            log.exception("%s crashed; restarting in %.1f s", name, backoff_s, extra={"plugin": name})
            if on_crash:
                on_crash(name, exc)
            await asyncio.sleep(backoff_s * (0.5 + random.random()))
            backoff_s = min(backoff_s * 2, MAX_BACKOFF_S)
