"""The data-centre adapter: standard records appended to the 前置库's ``ex_<kind>`` tables.

One ``deliver`` call is one submission: one transaction and one ``cd_batch`` (a call of more than
``max_batch_rows`` records is split, each part its own submission). Idempotent on ``cd_id`` (the
record_id): a record already in the table is reported delivered, with the batch that wrote it. A
row the database refuses (a NOT NULL, CHECK or length violation) is rejected on its own: the batch
is written again without it, each row in a savepoint, under the same ``cd_batch``.

Schema: Alembic migrations beside this package (``schema.py``, ``migrations/``), run by ``prepare()``
when ``create_tables`` is on, or by a DBA with ``sgw data-centre migrate``. The data centre's later
verdicts (``ex_feedback``) are read by ``feedback_source()``, every ``feedback_interval_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, SecretStr
from sqlalchemy import Connection, Table, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError

from adapters.base import DeliveryResult, OutboundRecord
from adapters.data_centre.columns import kind_columns
from adapters.data_centre.engine import create_target_engine
from adapters.data_centre.feedback import FeedbackPoller
from adapters.data_centre.rows import BulkInsert, RowBuilder, RowError
from adapters.data_centre.schema import migrate
from adapters.data_centre.sequence import BatchSequence, TableBatchSequence, format_batch
from adapters.data_centre.tables import exchange_tables
from gateway.errors import ConfigError, TransientError

SHANGHAI = ZoneInfo("Asia/Shanghai")
MAX_BATCH_ROWS = 5_000
_IN_CHUNK = 500


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


@dataclass(frozen=True, slots=True)
class _Prepared:
    record: OutboundRecord
    table: Table
    builder: RowBuilder


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
        self._sequence = sequence or TableBatchSequence(self._engine, self._tables.sequences)
        self._clock = clock or (lambda: datetime.now(UTC))
        self._builders = {kind: RowBuilder(columns, province_code=config.province_code,
                                           department_code=config.department_code)
                          for kind, columns in kind_columns(config.standard_version).items()}
        # PostgreSQL takes rows by COPY; SQLite (embedded) keeps SQLAlchemy Core inserts.
        self._bulk = ({t.name: BulkInsert(t, self._engine.dialect) for t in self._tables.kinds.values()}
                      if self._engine.dialect.name == "postgresql" else {})
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
        prepared: dict[str, _Prepared] = {}
        for record in batch:
            table = self._tables.kinds.get(record.kind)
            if table is None:
                results[record.record_id] = DeliveryResult(
                    record.record_id, "failed", code="KIND_UNROUTED",
                    message=f"no ex_ table for kind {record.kind!r} / 前置库无此类数据表")
            else:
                prepared.setdefault(record.record_id, _Prepared(record, table, self._builders[record.kind]))
        items = list(prepared.values())
        if items:
            try:
                self._ensure_tables()
            except DBAPIError as exc:
                return [_transient(record.record_id, exc) for record in batch]
        for start in range(0, len(items), self._config.max_batch_rows):
            results.update(self._submit(items[start:start + self._config.max_batch_rows]))
        return [results[record.record_id] for record in batch]

    def _ensure_tables(self) -> None:
        with self._ready_lock:
            if self._ready:
                return
            migrate(self._engine, self._config.db_schema)
            self._ready = True

    def _submit(self, items: Sequence[_Prepared]) -> dict[str, DeliveryResult]:
        now = self._clock().astimezone(SHANGHAI)
        try:
            cd_batch = format_batch(now.date(), self._sequence.next_value(self._config.target, now.date()))
        except (TransientError, DBAPIError) as exc:
            return {i.record.record_id: _transient(i.record.record_id, exc) for i in items}
        cd_time = now.replace(tzinfo=None, microsecond=0)  # timestamp(0), Shanghai wall clock
        results: dict[str, DeliveryResult] = {}
        rows: list[tuple[_Prepared, dict[str, Any]]] = []
        for item in items:
            try:
                rows.append((item, item.builder.build(item.record.record, cd_time, cd_batch)))
            except RowError as exc:
                results[item.record.record_id] = _rejected(item.record.record_id, exc)
        if not rows:
            return results
        receipt = {"cd_batch": cd_batch, "cd_time": now.isoformat(timespec="seconds")}
        try:
            results.update(self._write_all(rows, receipt))
        except (IntegrityError, DataError):
            results.update(self._write(rows, receipt, isolate=True))
        except DBAPIError as exc:
            results.update({i.record.record_id: _transient(i.record.record_id, exc) for i, _ in rows})
        return results

    def _write_all(self, rows: Sequence[tuple[_Prepared, dict[str, Any]]],
                   receipt: dict[str, Any]) -> dict[str, DeliveryResult]:
        """On PostgreSQL, first without looking for rows already written: COPY refuses the batch
        if one is (a unique violation), and only then are they looked up."""
        if not self._bulk:
            return self._write(rows, receipt, isolate=False)
        try:
            return self._write(rows, receipt, isolate=False, check=False)
        except IntegrityError:
            return self._write(rows, receipt, isolate=False)

    def _write(self, rows: Sequence[tuple[_Prepared, dict[str, Any]]], receipt: dict[str, Any],
               *, isolate: bool, check: bool = True) -> dict[str, DeliveryResult]:
        """Write the rows in one transaction; with ``isolate``, each in a savepoint so that the rows
        the database refuses are rejected and the others written. Without ``check``, no row is
        looked up first: the caller knows the insert fails if one is already there."""
        results: dict[str, DeliveryResult] = {}
        try:
            with self._engine.begin() as conn:
                existing = self._existing(conn, rows) if check else {}
                for item, _ in rows:
                    rid = item.record.record_id
                    table = item.table.name
                    if rid in existing:
                        results[rid] = DeliveryResult(rid, "delivered", code="DUPLICATE", receipt={
                            "table": table, "cd_batch": existing[rid], "duplicate": True})
                        continue
                    results[rid] = DeliveryResult(rid, "delivered", receipt={"table": table, **receipt})
                if isolate:
                    results.update(self._insert_each(conn, rows, existing))
                else:
                    self._insert_all(conn, [(i, r) for i, r in rows if i.record.record_id not in existing])
        except DBAPIError as exc:
            if isinstance(exc, IntegrityError | DataError) and not isolate:
                raise
            return {item.record.record_id: _transient(item.record.record_id, exc) for item, _ in rows}
        return results

    def _insert_all(self, conn: Connection, rows: Sequence[tuple[_Prepared, dict[str, Any]]]) -> None:
        by_table: dict[str, tuple[Table, list[dict[str, Any]]]] = {}
        for item, row in rows:
            by_table.setdefault(item.table.name, (item.table, []))[1].append(row)
        for table, table_rows in by_table.values():
            bulk = self._bulk.get(table.name)
            if bulk is not None:
                bulk.execute(conn, table_rows)
            else:
                conn.execute(_insert(conn, table), table_rows)

    def _insert_each(self, conn: Connection, rows: Sequence[tuple[_Prepared, dict[str, Any]]],
                     existing: dict[str, str]) -> dict[str, DeliveryResult]:
        refused: dict[str, DeliveryResult] = {}
        for item, row in rows:
            rid = item.record.record_id
            if rid in existing:
                continue
            try:
                with conn.begin_nested():
                    conn.execute(_insert(conn, item.table), row)
            except (IntegrityError, DataError) as exc:
                refused[rid] = DeliveryResult(rid, "rejected", code="TARGET_CONSTRAINT", message=(
                    f"前置库拒绝写入 / the 前置库 refused the row: {_first_line(exc)}"))
        return refused

    def _existing(self, conn: Connection, rows: Sequence[tuple[_Prepared, dict[str, Any]]]) -> dict[str, str]:
        """cd_id -> cd_batch of the rows already in their tables."""
        ids_by_table: dict[str, tuple[Table, list[str]]] = {}
        for item, _ in rows:
            ids_by_table.setdefault(item.table.name, (item.table, []))[1].append(item.record.record_id)
        found: dict[str, str] = {}
        for table, ids in ids_by_table.values():
            bulk = self._bulk.get(table.name)
            if bulk is not None:
                found.update(bulk.existing(conn, ids))
                continue
            for start in range(0, len(ids), _IN_CHUNK):
                chunk = ids[start:start + _IN_CHUNK]
                stmt = select(table.c.cd_id, table.c.cd_batch).where(table.c.cd_id.in_(chunk))
                found.update({cd_id: cd_batch for cd_id, cd_batch in conn.execute(stmt)})
        return found


def _insert(conn: Connection, table: Table) -> Any:
    # DO NOTHING guards against a concurrent worker; the pre-check reports the duplicates.
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table).on_conflict_do_nothing(index_elements=["cd_id"])


def _first_line(exc: DBAPIError) -> str:
    # Later lines of a PostgreSQL error (DETAIL) may quote the row's values, which may be PII.
    return str(exc.orig).strip().splitlines()[0] if exc.orig is not None else type(exc).__name__


def _transient(record_id: str, exc: Exception) -> DeliveryResult:
    reason = _first_line(exc) if isinstance(exc, DBAPIError) else str(exc)
    retry_after_s = exc.retry_after_s if isinstance(exc, TransientError) else None
    return DeliveryResult(record_id, "retry", code="TARGET_UNAVAILABLE",
                          message=f"前置库不可用 / the 前置库 is unavailable: {reason}",
                          retry_after_s=retry_after_s)


def _rejected(record_id: str, exc: RowError) -> DeliveryResult:
    return DeliveryResult(record_id, "rejected", code="DC002", message=(
        f"字段 {exc.field} 无法写入前置库 / field {exc.field} cannot be written: {exc.reason}"))
