"""The SOAP poll connector: reads each operation window by window, page by page.

A cycle (every ``poll_interval_s``, while this instance holds the poll lease) brings each
operation's cursor up to now: windows of ``window_s`` starting ``overlap_s`` before the cursor,
each read page by page until a short or empty page. Each non-empty page is one envelope; the cursor
moves to the window's end only after every page of it was published (durably written). Transient
faults and store outages are waited out on the same page; permanent ones stop the connector.

The source keeps no snapshot across pages: a record updated while its window is paged leaves the
window and every later record moves up one place, so one would be skipped for good. A page whose
``totalCount`` differs from page 1's shows that; the window is then read again from page 1 (ingest
drops the re-read records as duplicates), at most ``MAX_WINDOW_READS`` times.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, ClassVar, TypeVar

from connectors.base import ConnectorContext, Publish
from connectors.codecs import DecodeLimits
from gateway.envelope import Envelope
from gateway.errors import ConfigError, PayloadError, PermanentError, SourceUnavailable, TransientError

from .client import SoapClient
from .config import SoapOperation, SoapPollConfig
from .faults import decode_answer
from .throttle import CallGate, Sleep
from .window import BEIJING, Window, cursor_key, decode_cursor, encode_cursor, next_window

log = logging.getLogger(__name__)
T = TypeVar("T")
SUCCESS_CODE = "0000"
MAX_WINDOW_READS = 3  # a window whose total keeps changing is taken as read on the last pass


class LeaseLost(Exception):
    """Another instance holds the poll lease now: stop this cycle, read nothing more."""


def page_records(tree: Any, where: str) -> int:
    """How many records a decoded page holds (``return.records.record``: a list, one dict, or none)."""
    page = _page(tree, where)
    code = page.get("returnCode")
    if isinstance(code, str) and code.strip() and code.strip() != SUCCESS_CODE:
        raise SourceUnavailable(f"{where}: returnCode {code}: {page.get('returnMsg')}")
    records = page.get("records")
    found = records.get("record") if isinstance(records, dict) else None
    if isinstance(found, list):
        return len(found)
    return 1 if isinstance(found, dict) else 0


def page_total(tree: Any, where: str) -> int | None:
    """The page's ``totalCount`` (records in the whole window as the source counts them now)."""
    total = _page(tree, where).get("totalCount")
    return int(total) if isinstance(total, str) and total.strip().isdigit() else None


def _where(operation: SoapOperation, window: Window, page_no: int | None = None) -> str:
    """A window (and page) as logs and errors name it: ``QueryInspections 2025-06-03T00:00:00-... p2``."""
    name = f"{operation.name} {window.start_text}-{window.end_text}"
    return name if page_no is None else f"{name} p{page_no}"


def _page(tree: Any, where: str) -> dict[str, Any]:
    page = tree.get("return") if isinstance(tree, dict) else None
    if not isinstance(page, dict):
        raise PayloadError("MALFORMED", f"{where}: no return element（响应缺少 return）", location=where)
    return page


class SoapPollConnector:
    Config: ClassVar[type[SoapPollConfig]] = SoapPollConfig
    pushes_over_http: ClassVar[bool] = False

    def __init__(self, connector_id: str, config: SoapPollConfig, context: ConnectorContext, *,
                 clock: Callable[[], datetime] | None = None, sleep: Sleep = asyncio.sleep) -> None:
        self.connector_id = connector_id
        self.config = config
        self._state = context.state
        self._lease = context.lease
        self._clock = clock or (lambda: datetime.now(BEIJING))
        self._sleep = sleep
        self._client = SoapClient(config)
        self._limits = DecodeLimits(max_bytes=config.max_response_bytes)
        self._gate: CallGate | None = None
        self._first_call = asyncio.Lock()
        self._got_through = False
        """Set after the first answer that was not a Fault: until then calls go one at a time, so a
        wrong password costs one failed login per start (the account locks after 5 in 10 minutes)."""
        self._refused = False
        """Set when that first call failed for good: the calls queued behind it are not sent."""
        self._holding = False
        self.caught_up = asyncio.Event()
        """Set after each cycle that brought every operation up to now (for tests and the demo)."""

    async def run(self, publish: Publish) -> None:
        self._gate = CallGate(max_calls_per_min=self.config.max_calls_per_min,
                              max_concurrency=self.config.max_concurrency, sleep=self._sleep)
        self._got_through = self._refused = False  # a restarted run proves its credentials again
        try:
            await self._retrying("loading the WSDL", partial(asyncio.to_thread, self._client.load))
            while True:
                if await self._hold_lease():
                    await self._cycle(publish)
                await self._sleep(self.config.poll_interval_s)
        finally:
            await self._let_go()

    async def probe(self) -> dict[str, Any]:
        """Connection test (the admin API's): load the WSDL and ask the first operation for one page of
        the last window, with the configured credentials; nothing is published or saved."""
        operation = self.config.operations[0]
        end = self._clock().replace(microsecond=0)
        window = Window(start=end - timedelta(seconds=self.config.window_s), end=end)
        where = f"probe {_where(operation, window)}"
        try:
            await asyncio.to_thread(self._client.load)
            tree, _raw = await asyncio.to_thread(self._query, operation, window, 1, where)
        finally:
            await asyncio.to_thread(self._client.close)
        return {"operation": operation.name, "records": page_records(tree, where)}

    async def _let_go(self) -> None:
        try:
            if self._holding:
                self._holding = False
                await self._lease.release()
        finally:
            await asyncio.to_thread(self._client.close)

    async def _hold_lease(self) -> bool:
        held = self._holding and await self._lease.renew()
        self._holding = held or await self._lease.acquire()
        return self._holding

    async def _cycle(self, publish: Publish) -> None:
        try:
            async with asyncio.TaskGroup() as group:
                for operation in self.config.operations:
                    group.create_task(self._catch_up(operation, publish), name=f"{self.connector_id} {operation.name}")
        except BaseExceptionGroup as failed:
            error = _most_severe(failed)
            if isinstance(error, LeaseLost):
                self._holding = False
                log.info("%s: poll lease lost; another instance polls now", self.connector_id)
                return
            raise error from failed
        self.caught_up.set()

    async def _catch_up(self, operation: SoapOperation, publish: Publish) -> None:
        now = self._clock()
        cursor = decode_cursor(await self._retrying("loading the cursor", partial(
            self._state.load, cursor_key(operation.name))))
        config = self.config
        while (window := next_window(cursor, start_time=config.start_time, now=now, window_s=config.window_s,
                                     overlap_s=config.overlap_s)) is not None:
            await self._read_window(operation, window, publish)
            cursor = window.end
            if window.end >= now.replace(microsecond=0):
                return

    async def _read_window(self, operation: SoapOperation, window: Window, publish: Publish) -> None:
        name = _where(operation, window)
        for read in range(1, MAX_WINDOW_READS + 1):
            pages, steady = await self._read_pages(operation, window, publish)
            if steady:
                break
            if read < MAX_WINDOW_READS:
                log.info("%s: %s: totalCount changed while paging; reading the window again",
                         self.connector_id, name)
            else:
                log.warning("%s: %s: totalCount changed on each of %d reads; records updated meanwhile may "
                            "have been skipped（分页期间记录总数持续变化，可能漏读）", self.connector_id, name, read)
        # Every page of the window is durably written: only now may the source be considered read.
        await self._retrying(name, partial(self._state.save, cursor_key(operation.name), encode_cursor(window.end)))
        log.info("%s: read %s up to page %d", self.connector_id, name, pages)

    async def _read_pages(self, operation: SoapOperation, window: Window, publish: Publish) -> tuple[int, bool]:
        """One pass over the window's pages: how many were read, and whether totalCount held still.
        A full page's successor is fetched while the page is published (the source's call limits
        still hold: the gate); the cursor is saved by the caller once every page is written."""
        page_no, first_total = 1, None
        current = self._fetch_task(operation, window, page_no)
        following: asyncio.Task[tuple[Any, bytes]] | None = current
        try:
            while True:
                where = _where(operation, window, page_no)
                tree, raw = await current
                count, total = page_records(tree, where), page_total(tree, where)
                following = self._fetch_task(operation, window, page_no + 1) if count >= self.config.page_size \
                    else None
                if count:
                    envelope = self._envelope(operation, window, page_no, where, tree, raw)
                    await self._retrying(where, partial(publish, envelope))
                if page_no == 1:
                    first_total = total
                elif total != first_total:
                    return page_no, False
                if following is None:  # a short page: the last
                    return page_no, True
                current, page_no = following, page_no + 1
        finally:
            if following is not None:  # a page not needed after all (or the pass failed): its call is dropped
                following.cancel()
                await asyncio.gather(following, return_exceptions=True)

    def _fetch_task(self, operation: SoapOperation, window: Window, page_no: int) -> asyncio.Task[tuple[Any, bytes]]:
        where = _where(operation, window, page_no)
        return asyncio.create_task(self._retrying(where, partial(self._fetch, operation, window, page_no, where)),
                                   name=f"{self.connector_id} {where}")

    async def _fetch(self, operation: SoapOperation, window: Window, page_no: int, where: str) -> tuple[Any, bytes]:
        if not await self._lease.renew():
            raise LeaseLost(where)
        if self._got_through:
            return await self._call(operation, window, page_no, where)
        async with self._first_call:
            if self._refused:
                raise PermanentError(f"{where}: not sent: an earlier call was refused（前一请求被拒绝，本请求未发送）")
            try:
                answer = await self._call(operation, window, page_no, where)
            except (PermanentError, ConfigError):
                self._refused = True
                raise
            self._got_through = True
            return answer

    async def _call(self, operation: SoapOperation, window: Window, page_no: int, where: str) -> tuple[Any, bytes]:
        assert self._gate is not None
        async with self._gate.call():
            return await asyncio.to_thread(self._query, operation, window, page_no, where)

    def _query(self, operation: SoapOperation, window: Window, page_no: int, where: str) -> tuple[Any, bytes]:
        """In a worker thread: the call, then decoding the answer (CPU work kept off the loop too)."""
        answer = self._client.query(operation.name, window, page_no, self.config.page_size)
        tree = decode_answer(answer.status, answer.content, where=where, limits=self._limits,
                             rate_limited_backoff_s=self.config.rate_limited_backoff_s)
        return tree, answer.content  # xsi:nil elements are absent, xsi:type dropped (the XML codec)

    def _envelope(self, operation: SoapOperation, window: Window, page_no: int, where: str, tree: Any,
                  raw: bytes) -> Envelope:
        meta = {"variant": operation.variant, "operation": operation.name, "window_start": window.start_text,
                "window_end": window.end_text, "page": page_no, "location": where}
        return Envelope(connector=self.connector_id, payload=tree, received_at=datetime.now(UTC), meta=meta, raw=raw)

    async def _retrying(self, what: str, attempt: Callable[[], Awaitable[T]]) -> T:
        """``attempt`` until it succeeds; transient failures (source, store) wait with growing backoff."""
        backoff_s = self.config.retry_backoff_s
        while True:
            try:
                return await attempt()
            except TransientError as exc:
                wait_s = max(backoff_s * (0.5 + random.random()), exc.retry_after_s or 0.0)
                log.warning("%s: %s: %s; retrying in %.1f s", self.connector_id, what, exc, wait_s)
                await self._sleep(wait_s)
                backoff_s = min(backoff_s * 2, self.config.max_backoff_s)


def _most_severe(failed: BaseExceptionGroup[BaseException]) -> BaseException:
    """One error to report for a cycle: permanent ones first (they stop the connector)."""
    errors = list(_leaves(failed))
    for kinds in ((PermanentError, ConfigError), (LeaseLost,)):
        for error in errors:
            if isinstance(error, kinds):
                return error
    return errors[0]


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    out: list[BaseException] = []
    for error in group.exceptions:
        out.extend(_leaves(error) if isinstance(error, BaseExceptionGroup) else [error])
    return out
