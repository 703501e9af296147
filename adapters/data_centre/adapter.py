"""The data-centre adapter: standard records appended to the 前置库's ``ex_<kind>`` tables.

One ``deliver`` call is one submission: one transaction and one ``cd_batch`` (a call of more than
``max_batch_rows`` records is split, each part its own submission); a sequence kept in the 前置库
is bumped in that transaction, so only a written batch takes a number. Rows are built without
SQLAlchemy (``rows.py``) and written at driver level (``writers.py``): COPY on PostgreSQL, one
executemany on SQLite. Idempotent on ``cd_id`` (the record_id): the batch is written first without
looking; if a row is there already, the ids are looked up and the batch written again without them,
each reported delivered with the batch that wrote it. A row the database refuses (a NOT NULL, CHECK
or length violation) is rejected on its own: the batch is written again, each row in a savepoint,
under the same ``cd_batch``.

Schema: Alembic migrations beside this package (``schema.py``, ``migrations/``), run by ``prepare()``
when ``create_tables`` is on, or by a DBA with ``sgw data-centre migrate``. The data centre's later
verdicts (``ex_feedback``) are read by ``feedback_source()``, every ``feedback_interval_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, SecretStr
from sqlalchemy.exc import DBAPIError

from adapters.base import DeliveryResult, OutboundRecord
from adapters.data_centre.columns import kind_columns
from adapters.data_centre.engine import create_target_engine
from adapters.data_centre.feedback import FeedbackPoller
from adapters.data_centre.rows import RowBuilder, RowError, cd_time_value
from adapters.data_centre.schema import migrate
from adapters.data_centre.sequence import BatchSequence, TableBatchSequence, format_batch
from adapters.data_centre.submission import Row, SubmissionWriter, Target, first_line
from adapters.data_centre.tables import exchange_tables
from adapters.data_centre.writers import table_writer
from gateway.errors import ConfigError, TransientError

SHANGHAI = ZoneInfo("Asia/Shanghai")
MAX_BATCH_ROWS = 5_000


class DataCentreConfig(BaseModel):
    """Options of the ``data_centre`` adapter."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: SecretStr = Field(description="SQLAlchemy URL of the 前置库: postgresql://... or sqlite:///x.db")
    db_schema: str | None = Field(default=None, pattern=r"^[a-z_][a-z0-9_]*$", description="e.g. qzk")
    province_code: str | None = Field(
        default=None, pattern=r"^[0-9]{6}$",
        description="cd_source province; default admin_division_code[0:2] + 0000")
    department_code: str | None = Field(
        default=None, pattern=r"^[0-9A-Z]{18}$", description="cd_source department; default provider_uscc")
    create_tables: bool = Field(default=False, description=(
        "migrate the 前置库 schema (Alembic upgrade head) at start: the embedded run, tests, a 前置库 the "
        "gateway owns; also keeps the cd_batch sequence there when none is passed"))
    standard_version: str = "1.0"
    target: str = Field(default="data_centre", description="key of the persisted per-day cd_batch sequence")
    max_batch_rows: int = Field(default=MAX_BATCH_ROWS, ge=1, le=MAX_BATCH_ROWS)
    feedback_interval_s: float | None = Field(
        default=300.0, gt=0, description="poll ex_feedback this often (the contract: 5 min); null: never")


Config = DataCentreConfig


class DataCentreAdapter:
    name = "data_centre"
    Config = DataCentreConfig

    def __init__(self, config: DataCentreConfig, *, sequence: BatchSequence | None = None,
                 clock: Callable[[], datetime] | None = None) -> None:
        self._config = config
        self._engine = create_target_engine(config.url.get_secret_value())
        self._tables = exchange_tables(config.db_schema, config.standard_version)
        if sequence is None and not config.create_tables:
            raise ConfigError("adapters.data_centre: pass the gateway's cd_batch sequence, "
                              "or set create_tables to keep one in the target database")
        self._sequence = sequence  # the gateway's; else the one in the target, bumped as the batch is written
        self._writer = SubmissionWriter(self._engine, config.target, None if sequence else TableBatchSequence(
            self._engine, self._tables.sequences))
        self._clock = clock or (lambda: datetime.now(UTC))
        self._dialect = self._engine.dialect.name
        columns = kind_columns(config.standard_version)
        self._targets = {
            kind: Target(table.name, RowBuilder([c.name for c in table.columns], columns[kind], self._dialect,
                                                province_code=config.province_code,
                                                department_code=config.department_code),
                         table_writer(table, self._engine.dialect))
            for kind, table in self._tables.kinds.items()}
        self._ready = not config.create_tables
        self._ready_lock = threading.Lock()

    async def prepare(self) -> None:
        """At start: bring the 前置库 schema to the head revision when ``create_tables`` is on. A 前置库
        unreachable now is migrated before the first delivery instead (deliveries are retried)."""
        with contextlib.suppress(DBAPIError):
            await asyncio.to_thread(self._ensure_tables)

    @staticmethod
    def migrate_schema(config: DataCentreConfig) -> str | None:
        """``upgrade head`` of the 前置库 named by ``config`` (``sgw data-centre migrate``); the revision."""
        engine = create_target_engine(config.url.get_secret_value())
        try:
            return migrate(engine, config.db_schema)
        finally:
            engine.dispose()

    def feedback_source(self) -> FeedbackPoller | None:
        """The poller of ``ex_feedback`` (the data centre's verdicts), sharing this adapter's engine."""
        if self._config.feedback_interval_s is None:
            return None
        return FeedbackPoller(self._config, engine=self._engine, location=self.name)

    async def deliver(self, batch: Sequence[OutboundRecord]) -> list[DeliveryResult]:
        return await asyncio.to_thread(self.deliver_sync, list(batch))

    async def close(self) -> None:
        await asyncio.to_thread(self._engine.dispose)

    def deliver_sync(self, batch: Sequence[OutboundRecord]) -> list[DeliveryResult]:
        results: dict[str, DeliveryResult] = {}
        prepared: dict[str, tuple[OutboundRecord, Target]] = {}
        for record in batch:
            target = self._targets.get(record.kind)
            if target is None:
                results[record.record_id] = DeliveryResult(
                    record.record_id, "failed", code="KIND_UNROUTED",
                    message=f"no ex_ table for kind {record.kind!r} / 前置库无此类数据表")
            elif record.record_id not in prepared:
                prepared[record.record_id] = (record, target)
        items = list(prepared.values())
        if items:
            try:
                self._ensure_tables()
            except DBAPIError as exc:
                return [_transient(record.record_id, exc) for record in batch]
        for start in range(0, len(items), self._config.max_batch_rows):
            self._submit(items[start:start + self._config.max_batch_rows], results)
        return [results[record.record_id] for record in batch]

    def _ensure_tables(self) -> None:
        with self._ready_lock:
            if self._ready:
                return
            migrate(self._engine, self._config.db_schema)
            self._ready = True

    def _submit(self, items: Sequence[tuple[OutboundRecord, Target]], results: dict[str, DeliveryResult]) -> None:
        """One submission: the result of every record of ``items`` into ``results``."""
        now = self._clock().astimezone(SHANGHAI)
        cd_batch = None
        if self._sequence is not None:
            try:
                cd_batch = format_batch(now.date(), self._sequence.next_value(self._config.target, now.date()))
            except (TransientError, DBAPIError) as exc:
                results.update({record.record_id: _transient(record.record_id, exc) for record, _ in items})
                return
        # timestamp(0), Shanghai wall clock
        cd_time = cd_time_value(now.replace(tzinfo=None, microsecond=0), self._dialect)
        rows: list[Row] = []
        for target, records in _by_target(items):
            built = target.builder.build_all([record.record for record in records], cd_time)
            for record, row in zip(records, built, strict=True):
                if isinstance(row, RowError):
                    results[record.record_id] = _rejected(record.record_id, row)
                else:
                    rows.append((record.record_id, target, *row))
        if not rows:
            return
        try:
            written = self._writer.write(rows, cd_batch, now.date())
        except DBAPIError as exc:
            results.update({row[0]: _transient(row[0], exc) for row in rows})
            return
        written.outcomes(rows, now.isoformat(timespec="seconds"), results)


def _by_target(items: Sequence[tuple[OutboundRecord, Target]]) -> Iterable[tuple[Target, list[OutboundRecord]]]:
    """The records of each table, in order (a table's rows are written in that order)."""
    by_target: dict[str, tuple[Target, list[OutboundRecord]]] = {}
    for record, target in items:
        of_target = by_target.get(target.name)
        if of_target is None:
            of_target = by_target[target.name] = (target, [])
        of_target[1].append(record)
    return by_target.values()


def _transient(record_id: str, exc: Exception) -> DeliveryResult:
    reason = first_line(exc) if isinstance(exc, DBAPIError) else str(exc)
    retry_after_s = exc.retry_after_s if isinstance(exc, TransientError) else None
    return DeliveryResult(record_id, "retry", code="TARGET_UNAVAILABLE",
                          message=f"前置库不可用 / the 前置库 is unavailable: {reason}",
                          retry_after_s=retry_after_s)


def _rejected(record_id: str, exc: RowError) -> DeliveryResult:
    return DeliveryResult(record_id, "rejected", code="DC002", message=(
        f"字段 {exc.field} 无法写入前置库 / field {exc.field} cannot be written: {exc.reason}"))
