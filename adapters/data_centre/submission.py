"""One submission's rows written in one transaction, and what became of each.

The batch is written first without looking for rows already there (the write shows whether one
is: ``RowsAlreadyWritten``), then, if one was, again with the ids looked up and left out; a row the
database refuses (``IntegrityError``, ``DataError``) makes it written once more row by row, each in
a savepoint, so that only that row is rejected. A sequence kept in the 前置库 is bumped in each
attempt's transaction: the number commits with the rows, or not at all. Other database errors
propagate (``DBAPIError``): the caller makes them retries.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError

from adapters.base import DeliveryResult
from adapters.data_centre.rows import RowBuilder
from adapters.data_centre.sequence import TableBatchSequence, format_batch
from adapters.data_centre.writers import RowsAlreadyWritten, TableWriter


@dataclass(frozen=True, slots=True)
class Target:
    """One ``ex_<kind>`` table with the builder and the writer of its rows."""

    name: str
    builder: RowBuilder
    writer: TableWriter


Row = tuple[str, Target, tuple[str, ...], list[Any]]  # (record_id, its table, the row's columns, the row)


@dataclass(frozen=True, slots=True)
class Written:
    """What a committed write did: the batch number, the rows that were there already (cd_id ->
    their cd_batch) and the rows the table refused."""

    cd_batch: str
    existing: dict[str, str]
    refused: dict[str, DeliveryResult]

    def outcomes(self, rows: Sequence[Row], cd_time: str, out: dict[str, DeliveryResult]) -> None:
        """The result of every row into ``out``. One receipt per table, shared by the results of its
        rows (receipts are read, never changed); a delivered row's result made from its fields as
        they are, without the Python-level ``__new__`` of a NamedTuple."""
        receipts: dict[str, dict[str, Any]] = {}
        refused, existing = self.refused, self.existing
        for rid, target, _, _ in rows:
            table = target.name
            if rid in refused:
                out[rid] = refused[rid]
            elif rid in existing:
                out[rid] = DeliveryResult(rid, "delivered", "DUPLICATE", None, {
                    "table": table, "cd_batch": existing[rid], "duplicate": True})
            else:
                receipt = receipts.get(table)
                if receipt is None:
                    receipt = receipts[table] = {"table": table, "cd_batch": self.cd_batch, "cd_time": cd_time}
                out[rid] = tuple.__new__(DeliveryResult, (rid, "delivered", None, None, receipt, None))


class SubmissionWriter:
    """Writes submissions to one 前置库; ``sequence``: the one kept there, if numbers come from it
    (``target`` is its key)."""

    def __init__(self, engine: Engine, target: str, sequence: TableBatchSequence | None) -> None:
        self._engine = engine
        self._target = target
        self._sequence = sequence

    def write(self, rows: Sequence[Row], cd_batch: str | None, day: date) -> Written:
        """Write ``rows`` as batch ``cd_batch`` (None: the next number of ``day``)."""
        try:
            try:
                return self._write(rows, cd_batch, day, check=False)
            except RowsAlreadyWritten:
                pass
            try:
                return self._write(rows, cd_batch, day, check=True)
            except RowsAlreadyWritten:  # a concurrent writer since the look-up
                pass
        except (IntegrityError, DataError):
            pass
        return self._write(rows, cd_batch, day, check=True, isolate=True)

    def _write(self, rows: Sequence[Row], cd_batch: str | None, day: date, *, check: bool,
               isolate: bool = False) -> Written:
        """One transaction. With ``check``, the rows already there are looked up and left out; with
        ``isolate``, each row is written in a savepoint and the rows the table refuses are rejected."""
        with self._engine.begin() as conn:
            if cd_batch is None:
                assert self._sequence is not None, "a submission needs its number"
                cd_batch = format_batch(day, self._sequence.next_value_in(conn, self._target, day))
            existing = _existing(conn, rows) if check else {}
            fresh = [row for row in rows if row[0] not in existing] if existing else rows
            if isolate:
                return Written(cd_batch, existing, _insert_each(conn, fresh, cd_batch))
            _insert_all(conn, fresh, cd_batch)
        return Written(cd_batch, existing, {})


def _insert_all(conn: Connection, rows: Sequence[Row], cd_batch: str) -> None:
    # Rows of one table and one set of columns are written together. The builders' column tuples are
    # theirs alone and live as long as they do: their ids tell them apart, without hashing them.
    groups: dict[int, tuple[Target, tuple[str, ...], list[list[Any]]]] = {}
    for _, target, columns, row in rows:
        group = groups.get(id(columns))
        if group is None:
            group = groups[id(columns)] = (target, columns, [])
        group[2].append(row)
    for target, columns, group_rows in groups.values():
        target.writer.write(conn, columns, group_rows, cd_batch)


def _insert_each(conn: Connection, rows: Sequence[Row], cd_batch: str) -> dict[str, DeliveryResult]:
    refused: dict[str, DeliveryResult] = {}
    for rid, target, columns, row in rows:
        try:
            with conn.begin_nested():
                target.writer.write(conn, columns, [row], cd_batch)
        except RowsAlreadyWritten:
            continue  # by a concurrent writer since the look-up: it is there
        except (IntegrityError, DataError) as exc:
            refused[rid] = DeliveryResult(rid, "rejected", code="TARGET_CONSTRAINT", message=(
                f"前置库拒绝写入 / the 前置库 refused the row: {first_line(exc)}"))
    return refused


def _existing(conn: Connection, rows: Sequence[Row]) -> dict[str, str]:
    """cd_id -> cd_batch of the rows already in their tables."""
    ids_by_target: dict[str, tuple[Target, list[str]]] = {}
    for rid, target, _, _ in rows:
        ids_by_target.setdefault(target.name, (target, []))[1].append(rid)
    found: dict[str, str] = {}
    for target, ids in ids_by_target.values():
        found.update(target.writer.existing(conn, ids))
    return found


def first_line(exc: DBAPIError) -> str:
    # Later lines of a PostgreSQL error (DETAIL) may quote the row's values, which may be PII.
    return str(exc.orig).strip().splitlines()[0] if exc.orig is not None else type(exc).__name__
