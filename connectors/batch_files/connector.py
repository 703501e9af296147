"""The batch-file connector: county bureaus' files from the exchange directory, row by row.

Per file: marker checked, file claimed (``claim``), verified against its marker (``readers``),
then published in chunks of ``chunk_rows`` rows. After each chunk's ``publish`` returned, the
rows' results go to the file's spool and the checkpoint (next row) to ``context.state``: a crash
resumes at the chunk after the last checkpoint, and a chunk published twice is dropped by ingest
as duplicates (same record ids), so every row reaches the data centre once. At the end the
result file is written, the file archived and its name and SHA-256 remembered (F006).
Two chunks are in flight at a time (one written while the next is mapped); their results and
checkpoints still follow the file's order.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import Any, ClassVar

from connectors.base import ConnectorContext, Publish, PublishReceipt
from connectors.batch_files import claim as claiming
from connectors.batch_files.config import BatchFilesConfig
from connectors.batch_files.naming import (
    FileRefused,
    Marker,
    data_file_for,
    data_files_for,
    is_plain_name,
    parse_base,
    parse_marker,
)
from connectors.batch_files.outcomes import ResultRow, duplicate_row, file_failure, foreign_org_row, result_for
from connectors.batch_files.readers import Verified, iter_rows, refusal, verify
from connectors.batch_files.spool import Spool, keep_earlier_result, write_result_file
from connectors.codecs import DecodeLimits
from connectors.file_meta import file_meta
from gateway.envelope import Envelope
from gateway.errors import PayloadError, StoreUnavailable

log = logging.getLogger(__name__)
Row = dict[str, Any]
CHUNKS_IN_FLIGHT = 2  # one being written while the next is mapped


@dataclass(slots=True)
class _Job:
    claimed: claiming.Claimed
    variant: str
    verified: Verified
    meta: dict[str, Any]
    key_column: str | None
    spool: Spool
    state_key: str
    next_row: int
    resume_until: int
    results: list[ResultRow] = field(default_factory=list)
    # First rows of keys seen in chunks published but not yet spooled (the spool answers for the rest).
    unspooled_firsts: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class _Flight:
    """A chunk on its way: split, published (``task``), then spooled and checkpointed in turn."""

    refused: list[ResultRow]  # rows not published: in-file duplicates, another body's decisions
    firsts: list[tuple[str, int]]
    payload: list[Row]
    numbers: list[int]
    keys: list[str]
    last_row: int
    envelope: Envelope | None = None
    task: asyncio.Task[PublishReceipt | None] | None = None


class BatchFilesConnector:
    Config: ClassVar[type[BatchFilesConfig]] = BatchFilesConfig
    pushes_over_http: ClassVar[bool] = False

    def __init__(self, connector_id: str, config: BatchFilesConfig, context: ConnectorContext) -> None:
        self.connector_id = connector_id
        self.config = config
        self.state = context.state
        self.limits = DecodeLimits(max_bytes=config.max_bytes, max_rows=config.max_rows,
                                   xlsx_max_uncompressed_bytes=config.xlsx_max_uncompressed_bytes,
                                   xlsx_max_ratio=config.xlsx_max_ratio)
        self.processed: list[str] = []   # names archived by this instance, in order (for ops and tests)
        self.refused: list[tuple[str, str]] = []

    async def run(self, publish: Publish) -> None:
        while True:
            if not await self.scan_once(publish):
                await asyncio.sleep(self.config.poll_interval_s)

    async def scan_once(self, publish: Publish) -> int:
        """One pass over every provider folder; returns how many files were taken."""
        taken = 0
        for dirs in await asyncio.to_thread(self._provider_dirs):
            for orphan in await asyncio.to_thread(claiming.orphans, dirs):
                taken += 1
                await self._process(orphan, publish)
            for marker in sorted(dirs.upload.glob("*.ok")):
                taken += await self._take(dirs, marker, publish)
        return taken

    def _provider_dirs(self) -> list[claiming.ProviderDirs]:
        root = self.config.exchange_root
        names = self.config.providers or tuple(sorted(p.name for p in root.iterdir() if p.is_dir()))
        out = []
        for name in names:
            dirs = claiming.ProviderDirs(root / name, name)
            if dirs.upload.is_dir():
                dirs.ensure()
                out.append(dirs)
        return out

    # -- taking a file --------------------------------------------------------------------------

    async def _take(self, dirs: claiming.ProviderDirs, marker: Path, publish: Publish) -> int:
        base = marker.stem
        try:
            parse_base(base, dirs.provider)
        except FileRefused as refused:
            strays = [p for ext in ("csv", "xlsx", "xml") if (p := dirs.upload / f"{base}.{ext}").exists()]
            await asyncio.to_thread(self._refuse_paths, dirs, base, [*strays, marker], refused)
            return 1
        try:
            data = data_file_for(dirs.upload, base)
        except FileRefused as refused:  # several data files for one marker
            await asyncio.to_thread(self._refuse_paths, dirs, base, [*data_files_for(dirs.upload, base), marker],
                                    refused)
            return 1
        if data is None:
            return 0  # the data file is not there (yet); a marker alone is ignored
        try:
            claimed = await asyncio.to_thread(claiming.claim, dirs, data)
        except OSError as exc:
            if not claiming.is_symlink_error(exc):
                raise
            symlink = FileRefused("F005", "数据文件不是普通文件（符号链接或设备文件），已拒收",
                                  "the data file is a symlink, a FIFO or a device")
            await asyncio.to_thread(self._refuse_paths, dirs, base, [data, marker], symlink)
            return 1
        if claimed is None:
            return 0
        await self._process(claimed, publish)
        return 1

    async def _process(self, claimed: claiming.Claimed, publish: Publish) -> None:
        job: _Job | None = None
        try:
            job = await self._prepare(claimed)
            if job is not None:
                await self._ingest(job, publish)
        except FileRefused as refused:
            await asyncio.to_thread(self._refuse_paths, claimed.dirs, claimed.base,
                                    [claimed.data, claimed.marker], refused)
        finally:
            if job is not None:
                job.spool.close()  # kept on disk unless the file finished: a resume reads it
            claimed.release()

    async def _prepare(self, claimed: claiming.Claimed) -> _Job | None:
        name = parse_base(claimed.base, claimed.dirs.provider)
        if not claimed.marker.exists():
            raise FileRefused("F001", "缺少 .ok 标记文件", "the .ok marker is missing")
        marker = parse_marker(claiming.read_marker(claimed.marker), claimed.data.name)
        fmt = claimed.data.suffix.lstrip(".")
        variant = self.config.variants.get(f"{name.kind}.{fmt}")
        if variant is None:
            raise FileRefused("F005", f"不支持的文件类型“{name.kind}”（{fmt}）", f"no variant for {name.kind}.{fmt}")
        # The base name is the file's idempotency key, whatever its format (contract); keys of the
        # full name were written before.
        done = await self.state.load(_done_key(claimed))
        if done is None:
            done = await self.state.load(f"done:{claimed.dirs.provider}/{claimed.data.name}")
        if done is not None:
            await self._already_done(claimed, marker, done)
            return None
        verified = await asyncio.to_thread(
            verify, claimed.data, fmt, marker, limits=self.limits, encoding=self.config.encoding,
            required_columns=self.config.required_columns.get(variant, ()))
        state_key = f"file:{claimed.dirs.provider}/{claimed.data.name}"
        checkpoint = await self.state.load(state_key)
        resumed = isinstance(checkpoint, dict) and checkpoint.get("sha256") == verified.sha256
        next_row = int(checkpoint["next_row"]) if resumed else 1
        spool = Spool(claimed.dirs.processing / f"{claimed.base}.spool.sqlite")
        await asyncio.to_thread(spool.forget_from, next_row)
        meta = {**file_meta(claimed.data), "variant": variant}
        if fmt == "xml":
            meta["header"] = verified.xml_header
        if resumed:
            log.info("resuming %s at row %d", claimed.data.name, next_row)
        return _Job(claimed=claimed, variant=variant, verified=verified, meta=meta,
                    key_column=self.config.key_columns.get(variant), spool=spool, state_key=state_key,
                    next_row=next_row, resume_until=next_row + self.config.chunk_rows if resumed else 0)

    async def _already_done(self, claimed: claiming.Claimed, marker: Marker, done: Any) -> None:
        if done != marker.sha256:
            raise FileRefused("F006", "同名文件重复提交且内容不同（请使用新的序号）",
                              "this name was processed before with other content")
        # The same file dropped again (or a crash after it was finished): nothing more to ingest.
        await asyncio.to_thread(claiming.archive, claimed, datetime.now(UTC))

    # -- ingesting rows -------------------------------------------------------------------------

    async def _ingest(self, job: _Job, publish: Publish) -> None:
        rows = self._rows(job)
        window: deque[_Flight] = deque()
        try:
            await asyncio.to_thread(_skip, rows, job.next_row - 1)
            while chunk := await asyncio.to_thread(_take_chunk, rows, self.config.chunk_rows):
                flight = await asyncio.to_thread(self._split, job, chunk)
                if len(window) >= CHUNKS_IN_FLIGHT:
                    await self._settle(job, window, publish)
                window.append(self._start(flight, job, publish))
            while window:
                await self._settle(job, window, publish)
        except PayloadError as exc:  # verified before, so the file changed under us
            job.spool.close(delete=True)
            raise refusal(exc) from exc
        finally:
            for flight in window:  # not acknowledged: published again after the checkpoint
                if flight.task is not None:
                    flight.task.cancel()
        await asyncio.to_thread(self._finish_files, job)
        await self.state.save(_done_key(job.claimed), job.verified.sha256)
        await asyncio.to_thread(claiming.archive, job.claimed, datetime.now(UTC))
        await self.state.clear(job.state_key)
        job.spool.close(delete=True)
        self.processed.append(job.claimed.data.name)
        log.info("batch file %s done: %s", job.claimed.data.name, job.spool.path.name)

    def _rows(self, job: _Job) -> Iterator[tuple[int, Row]]:
        fmt = job.claimed.data.suffix.lstrip(".")
        if fmt == "xml":
            records = job.verified.xml_records
            return enumerate((r if isinstance(r, dict) else {} for r in records), 1)
        return enumerate(iter_rows(job.claimed.data, fmt, limits=self.limits, encoding=self.config.encoding), 1)

    def _start(self, flight: _Flight, job: _Job, publish: Publish) -> _Flight:
        """Publish the chunk's rows (one attempt) while the next chunk is read and published: the
        publisher evaluates chunks in this order and writes them in this order."""
        if flight.payload:
            numbers = flight.numbers
            flight.envelope = Envelope(connector=self.connector_id, payload=flight.payload,
                                       received_at=datetime.now(UTC), records_inline=True,
                                       meta={**job.meta, "row_offset": numbers[0] - 1, "row_numbers": numbers})
            flight.task = asyncio.create_task(self._publish_once(publish, flight.envelope))
        return flight

    async def _settle(self, job: _Job, window: deque[_Flight], publish: Publish) -> None:
        """The oldest chunk in flight: once published, its results to the spool, then the checkpoint.
        A chunk the store refused is published again, and so, in order and one at a time, is every
        chunk behind it: the publisher failed those too (they were judged with it in view)."""
        failed = False
        while window:
            flight = window.popleft()
            receipt = await flight.task if flight.task is not None else None
            if flight.envelope is not None and receipt is None:
                failed = True
                receipt = await self._publish(publish, flight.envelope)
            await self._record(job, flight, receipt)
            if not failed:
                return

    async def _record(self, job: _Job, flight: _Flight, receipt: PublishReceipt | None) -> None:
        results = list(flight.refused)
        if receipt is not None:
            results.extend(self._results(job, receipt, flight.payload, flight.numbers, flight.keys))
        await asyncio.to_thread(job.spool.add, results, flight.firsts)
        for key, _ in flight.firsts:
            job.unspooled_firsts.pop(key, None)
        await self.state.save(job.state_key, {"sha256": job.verified.sha256, "next_row": flight.last_row + 1})

    def _split(self, job: _Job, chunk: list[tuple[int, Row]]) -> _Flight:
        """Rows that are not published: in-file duplicates (same key as an earlier row) become E108,
        rows deciding for a body the provider does not submit for E110 (contract: the provider "must
        equal 处罚机关统一社会信用代码 or be its superior (configured)", ``subordinates``)."""
        column, org_column = job.key_column, self.config.org_columns.get(job.variant)
        provider, subordinates = job.claimed.dirs.provider, self.config.subordinates
        keys = [_cell(row, column) for _, row in chunk]
        seen = job.spool.first_rows([k for k in keys if k]) if column else {}
        if job.unspooled_firsts:
            seen.update((k, job.unspooled_firsts[k]) for k in keys if k in job.unspooled_firsts)
        refused: list[ResultRow] = []
        firsts: list[tuple[str, int]] = []
        payload: list[Row] = []
        numbers: list[int] = []
        published_keys: list[str] = []
        for (number, row), key in zip(chunk, keys, strict=True):
            if key and key in seen:
                refused.append(duplicate_row(number, key, seen[key]))
                continue
            if key and column:
                seen[key] = number
                firsts.append((key, number))
                job.unspooled_firsts[key] = number
            if org_column and (foreign := foreign_org_row(number, key, _cell(row, org_column), provider,
                                                          subordinates)) is not None:
                refused.append(foreign)
                continue
            payload.append(row)
            numbers.append(number)
            published_keys.append(key)
        return _Flight(refused, firsts, payload, numbers, published_keys, last_row=chunk[-1][0])

    def _results(self, job: _Job, receipt: PublishReceipt, payload: list[Row], numbers: list[int],
                 keys: list[str]) -> list[ResultRow]:
        silent = frozenset(self.config.silent_warnings)
        labels = self.config.column_labels
        return [result_for(r, numbers[r.index], keys[r.index], payload[r.index], labels=labels,
                           silent_warnings=silent, resumed=numbers[r.index] < job.resume_until)
                for r in receipt.records]

    @staticmethod
    async def _publish_once(publish: Publish, envelope: Envelope) -> PublishReceipt | None:
        try:
            return await publish(envelope)
        except StoreUnavailable as exc:
            log.warning("store unavailable, chunk of %s kept: %s", envelope.meta.get("file"), exc)
            return None

    async def _publish(self, publish: Publish, envelope: Envelope) -> PublishReceipt:
        while True:
            try:
                return await publish(envelope)
            except StoreUnavailable as exc:
                # Not acknowledged: the checkpoint stays; the same chunk is published again.
                log.warning("store unavailable, chunk of %s kept: %s", envelope.meta.get("file"), exc)
                await asyncio.sleep(self.config.store_retry_s)

    # -- files ----------------------------------------------------------------------------------

    def _finish_files(self, job: _Job) -> None:
        target = job.claimed.dirs.result / f"{job.claimed.base}.result.csv"
        job.spool.write_result(target, _result_encoding(job.verified.encoding))

    def _refuse_paths(self, dirs: claiming.ProviderDirs, base: str, paths: list[Path], refused: FileRefused) -> None:
        log.warning("batch file %s refused: %s", base, refused)
        self.refused.append((base, refused.code))
        if is_plain_name(base):
            dirs.result.mkdir(exist_ok=True)
            target = dirs.result / f"{base}.result.csv"
            keep_earlier_result(target)
            write_result_file(target, "gb18030", [file_failure(refused.code, refused.message_zh).cells()])
        claiming.fail(dirs, paths, refused.code, refused.message_zh)


def _done_key(claimed: claiming.Claimed) -> str:
    return f"done:{claimed.dirs.provider}/{claimed.base}"


def _cell(row: Row, column: str | None) -> str:
    if column is None:
        return ""
    value = row.get(column, "")
    return value.strip() if isinstance(value, str) else ""


def _skip(rows: Iterator[tuple[int, Row]], count: int) -> None:
    for _ in islice(rows, count):
        pass


def _take_chunk(rows: Iterator[tuple[int, Row]], size: int) -> list[tuple[int, Row]]:
    return list(islice(rows, size))


def _result_encoding(detected: str | None) -> str:
    """The file's own encoding: UTF-8 (with its BOM when it had one) stays UTF-8, the rest is GBK."""
    return detected if detected in ("utf-8", "utf-8-sig") else "gb18030"
