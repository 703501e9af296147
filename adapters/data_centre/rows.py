"""A standard record as a row of its ``ex_<kind>`` table (append-only: one row per version).

``RowBuilder.build`` gives the columns a row fills and the row: its values already what the
dialect writes (``columns.encoder``), None if absent, handed to the driver as they are by the writers
(``writers.py``), so no value goes through SQLAlchemy's types or psycopg's Python dumpers again.
``cd_batch`` comes last, left for the writer to set: when the sequence is kept in the 前置库, the
number is only known inside the write transaction.

Records of one mapping share their layout (the same fields), so the builder learns, per layout,
which values must be texts of what length and which are encoded: a record is then checked by a few
C-level passes over its values rather than a Python step per field, and its row fills only the
columns it has (the others are NULL). A record the quick path finds anything wrong with (or of a
layout not learnt) is built field by field, which gives the error: both accept the same records
and write the same values. ``build_all`` does the same for a submission's records, checking and
encoding the records of a layout a column at a time, and falls back to ``build`` per record when
any of them is not well-formed.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import repeat
from operator import call, itemgetter
from typing import Any

from adapters.data_centre.columns import (
    EXCHANGE_COLUMNS,
    TEXT_TYPES,
    ColumnEncoder,
    Converter,
    FieldColumn,
    column_encoder,
    encoder,
    quick_encoder,
)

CD_SOURCE = re.compile(r"[0-9]{6}\|[0-9A-Z]{18}")
OPERATIONS = frozenset({"i", "u", "d"})
MAX_LAYOUTS = 64  # per table; records of other layouts are built field by field
MAX_SOURCES = 1_024  # cd_sources remembered per table
# The record's fields the exchange columns are taken from, checked as texts of at most this length.
_EXCHANGE_FIELDS = (("cd_id", "record_id", 100), ("record_unique_identity", "source_record_id", 100),
                    ("cd_operation", "operation", 1))
_LAST_COLUMNS = ("cd_time", "cd_source", "cd_batch")
_SOURCE_FIELDS = ("admin_division_code", "provider_uscc")  # what cd_source is made of
_LAYOUT_FIELDS = frozenset({field for _, field, _ in _EXCHANGE_FIELDS} | set(_SOURCE_FIELDS))


Built = tuple[tuple[str, ...], list[Any]]  # the columns a row fills, and the row
_PENDING: Built = ((), [])  # in build_all, where a row of a layout will be


class RowError(ValueError):
    """The record cannot be written: ``field`` is the standard field (or exchange column) at fault."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def cd_time_value(cd_time: datetime, dialect: str) -> str:
    """``cd_time`` (timestamp(0), Shanghai wall clock) as written: COPY text on PostgreSQL, on SQLite
    the storage format of SQLAlchemy's DateTime, which reads it back."""
    return cd_time.isoformat(sep=" ", timespec="seconds" if dialect == "postgresql" else "microseconds")


@dataclass(frozen=True, slots=True)
class _Layout:
    """Records with exactly these fields. ``pick`` takes their values: first the ``texts``, which
    must be non-empty texts, each at most as long as ``cut`` formats it (the exchange fields, then
    the text columns), then the ``others``, of ``types``: those for ``encoders``, then those written
    as they are; then fields that are no column. The row is the texts, the others' values, cd_time,
    cd_source and cd_batch: ``columns``."""

    size: int
    pick: Callable[[Mapping[str, Any]], tuple[Any, ...]]
    source: Callable[[tuple[Any, ...]], tuple[Any, Any]]  # of the picked values, what cd_source is made of
    texts: slice  # of the picked values
    cut: str  # "%.<longest>s" per text
    others: slice  # of the picked values
    types: tuple[type, ...]
    encoders: tuple[Converter, ...]
    column_encoders: tuple[ColumnEncoder, ...]  # the encoders, of a column's values
    as_it_is: slice  # of the others
    columns: tuple[str, ...]
    limits: tuple[int, ...]  # per text
    source_at: tuple[int, int]  # of the picked values, where what cd_source is made of is


class RowBuilder:
    """Builds the rows of one table for one dialect, learning up to ``max_layouts`` layouts."""

    def __init__(self, table_columns: Sequence[str], columns: tuple[FieldColumn, ...], dialect: str, *,
                 province_code: str | None, department_code: str | None, max_layouts: int = MAX_LAYOUTS) -> None:
        if tuple(table_columns[:len(EXCHANGE_COLUMNS)]) != EXCHANGE_COLUMNS:
            raise ValueError(f"an ex_ table starts with {EXCHANGE_COLUMNS}, not {tuple(table_columns)}")
        # The columns of a row built field by field: all, cd_batch last.
        self.all_columns = (*(c for c in table_columns if c != "cd_batch"), "cd_batch")
        position = {name: i for i, name in enumerate(self.all_columns)}
        self._columns = {c.name: c for c in columns}
        self._dialect = dialect
        # Per standard field: its position, the longest text written as it is (0: not a text column;
        # a value that is not such a text goes through the encoder, for its error) and the encoder.
        self._slots = {c.name: (position[c.name], (c.length or sys.maxsize) if c.type in TEXT_TYPES else 0,
                                encoder(c, dialect)) for c in columns}
        # Every column present (None unless the record has a value): the row's shape never varies.
        self._empty: list[Any] = [None] * len(self.all_columns)
        self._layouts: dict[int, list[_Layout]] = {}
        self._layouts_left = max_layouts
        self._sources: dict[tuple[Any, Any], str] = {}
        self._province_code = province_code
        self._department_code = department_code

    def build(self, record: Mapping[str, Any], cd_time: str) -> Built:
        """The columns and the row of ``record``, ``cd_time`` as written (``cd_time_value``),
        ``cd_batch`` last and unset. Raises ``RowError`` for a record the table cannot hold."""
        picked = self._pick(record)
        if picked is None:
            return self.all_columns, self._by_field(record, cd_time)
        layout, values = picked
        texts = values[layout.texts]
        others = values[layout.others]
        try:
            # Texts (join refuses anything else), none too long (formatting each cut to its limit keeps
            # them all whole only then), none empty, an operation; values of the types the other
            # columns' encoders take. Anything else is looked at field by field.
            if (len(layout.cut % texts) == len("".join(texts)) and all(texts) and texts[2] in OPERATIONS
                    and tuple(map(type, others)) == layout.types):
                source = self._sources.get(layout.source(values)) or self._cd_source(record)
                row = [*texts, *map(call, layout.encoders, others), *others[layout.as_it_is], cd_time, source, None]
                return layout.columns, row
        except (ValueError, TypeError):  # RowError is a ValueError
            pass
        return self.all_columns, self._by_field(record, cd_time)

    def build_all(self, records: Sequence[Mapping[str, Any]], cd_time: str) -> list[Built | RowError]:
        """``build`` of each record, in order: its columns and row, or the ``RowError`` it raises.
        The records of a layout are checked and encoded a column at a time, by C-level passes over
        all their values; if any of them is not well-formed, they are built one by one."""
        built: list[Built | RowError] = []
        layouts: dict[int, tuple[_Layout, list[int], list[tuple[Any, ...]]]] = {}
        for index, record in enumerate(records):
            picked = self._pick(record)
            if picked is None:
                built.append(self._built(record, cd_time))
                continue
            built.append(_PENDING)
            layout, values = picked
            of_layout = layouts.get(id(layout))
            if of_layout is None:
                of_layout = layouts[id(layout)] = (layout, [], [])
            of_layout[1].append(index)
            of_layout[2].append(values)
        for layout, indices, picked_values in layouts.values():
            rows = self._rows(layout, [records[i] for i in indices], picked_values, cd_time)
            for index, row in zip(indices, rows, strict=True):
                built[index] = self._built(records[index], cd_time) if row is None else (layout.columns, row)
        return built

    def _built(self, record: Mapping[str, Any], cd_time: str) -> Built | RowError:
        try:
            return self.build(record, cd_time)
        except RowError as exc:
            return exc

    def _rows(self, layout: _Layout, records: list[Mapping[str, Any]], values: list[tuple[Any, ...]],
              cd_time: str) -> list[list[Any]] | list[None]:
        """The rows of ``records`` of ``layout`` (``values``: their picked values), checked as ``build``
        checks one; Nones if any of them is not well-formed."""
        count = len(records)
        columns = list(zip(*values, strict=True))  # per picked field, its values
        texts, others = columns[layout.texts], columns[layout.others]
        try:
            if (all(map(_fit, texts, layout.limits)) and OPERATIONS.issuperset(texts[2])
                    and all(map(_of_type, others, layout.types))):
                sources = list(map(self._sources.get, zip(*(columns[i] for i in layout.source_at), strict=True)))
                if None in sources:
                    sources = [source or self._cd_source(record)
                               for source, record in zip(sources, records, strict=True)]
                # The encoded columns come first among the others.
                encoded = [encode(column) for encode, column in zip(layout.column_encoders, others, strict=False)]
                return list(map(list, zip(*texts, *encoded, *others[layout.as_it_is], repeat(cd_time, count),
                                          sources, repeat(None, count), strict=True)))
        except (ValueError, TypeError):  # RowError is a ValueError
            pass
        return [None] * count

    def _pick(self, record: Mapping[str, Any]) -> tuple[_Layout, tuple[Any, ...]] | None:
        """The layout of ``record`` (learnt now if new) and its values as the layout picks them; None
        for a record built field by field."""
        # A record of a layout has its number of fields, and all of them (so no other).
        for layout in self._layouts.get(len(record), ()):
            try:
                return layout, layout.pick(record)
            except KeyError:
                continue
        learnt = self._learn(record)
        return None if learnt is None else (learnt, learnt.pick(record))

    def _learn(self, record: Mapping[str, Any]) -> _Layout | None:
        """The layout of records with the fields of ``record``, remembered; None if the fields of the
        exchange columns are not all there (such records are refused field by field) or enough
        layouts are known."""
        keys = tuple(record)
        if self._layouts_left <= 0 or not set(keys) >= _LAYOUT_FIELDS:
            return None
        texts = [c for c in self._columns.values() if c.type in TEXT_TYPES and c.name in record]
        typed = {c.name: quick_encoder(c, self._dialect) for c in self._columns.values()
                 if c.type not in TEXT_TYPES and c.name in record}
        # The record's own keys: the records of a mapping share them (orjson's key cache, the mapping's
        # names), and a key found by identity is not compared.
        own = {key: key for key in keys}
        # Those with an encoder first.
        others = [own[name] for name in sorted(typed, key=lambda name: typed[name][1] is None)]
        picked = [own[field] for _, field, _ in _EXCHANGE_FIELDS] + [own[c.name] for c in texts] + others
        chosen = set(picked)
        picked += [key for key in keys if key not in chosen]  # no column: only to know the layout
        limits = [limit for _, _, limit in _EXCHANGE_FIELDS] + [c.length or sys.maxsize for c in texts]
        encoders = tuple(encode for _, encode in typed.values() if encode is not None)
        layout = _Layout(
            size=len(keys), pick=itemgetter(*picked), source=itemgetter(*map(picked.index, _SOURCE_FIELDS)),
            texts=slice(0, len(limits)),
            cut="".join("%s" if limit == sys.maxsize else f"%.{limit}s" for limit in limits),
            others=slice(len(limits), len(limits) + len(others)), types=tuple(typed[name][0] for name in others),
            encoders=encoders, column_encoders=tuple(map(column_encoder, encoders)),
            as_it_is=slice(len(encoders), None),
            columns=(*(column for column, _, _ in _EXCHANGE_FIELDS), *(c.name for c in texts), *others,
                     *_LAST_COLUMNS),
            limits=tuple(limits), source_at=(picked.index(_SOURCE_FIELDS[0]), picked.index(_SOURCE_FIELDS[1])))
        self._layouts.setdefault(layout.size, []).append(layout)
        self._layouts_left -= 1
        return layout

    def _by_field(self, record: Mapping[str, Any], cd_time: str) -> list[Any]:
        row = self._empty.copy()  # cd_id, cd_time, cd_source, cd_operation, record_unique_identity, ...
        row[0] = _required(record, "record_id")
        row[1] = cd_time
        row[2] = self.cd_source(record)
        row[3] = _operation(record)
        row[4] = _required(record, "source_record_id")
        slots = self._slots
        # Only the record's own fields are visited: absent ones stay None without an encoder call,
        # and fields that are no column (record_id, ext, ...) have no slot.
        for name, value in record.items():
            slot = slots.get(name)
            if slot is None:
                continue
            position, text_limit, encode = slot
            if value.__class__ is str:
                if 0 < len(value) <= text_limit:
                    row[position] = value
                    continue
                if not value:
                    continue
            elif value is None or value == "" or value == []:
                continue
            try:
                row[position] = encode(value)
            except (ValueError, TypeError) as exc:
                raise RowError(name, str(exc)) from exc
        return row

    def _cd_source(self, record: Mapping[str, Any]) -> str:
        """``cd_source``, remembered per (admin_division_code, provider_uscc)."""
        key = (record.get(_SOURCE_FIELDS[0]), record.get(_SOURCE_FIELDS[1]))
        source = self._sources.get(key)
        if source is None:
            source = self.cd_source(record)
            if len(self._sources) < MAX_SOURCES:
                self._sources[key] = source
        return source

    def cd_source(self, record: Mapping[str, Any]) -> str:
        """``<province>|<department>``: province = admin_division_code[0:2] + "0000" and department =
        provider_uscc, unless the target configures other codes."""
        province = self._province_code or str(record.get("admin_division_code") or "")[:2] + "0000"
        department = self._department_code or str(record.get("provider_uscc") or "")
        source = f"{province}|{department}"
        if not CD_SOURCE.fullmatch(source):
            raise RowError("provider_uscc", "cd_source must be <6 digits>|<18-character USCC>")
        return source


def _fit(texts: tuple[Any, ...], limit: int) -> bool:
    """Texts (join refuses anything else), none empty, none longer than ``limit``."""
    "".join(texts)  # a TypeError unless all are texts
    return all(texts) and max(map(len, texts)) <= limit


def _of_type(values: tuple[Any, ...], expected: type) -> bool:
    """All of exactly the ``expected`` type (no bool for an integer)."""
    return set(map(type, values)) == {expected}


def _required(record: Mapping[str, Any], field: str) -> str:
    value = record.get(field)
    if not isinstance(value, str) or not value or len(value) > 100:
        raise RowError(field, "required, at most 100 characters")
    return value


def _operation(record: Mapping[str, Any]) -> str:
    operation = record.get("operation")
    if not isinstance(operation, str) or operation not in OPERATIONS:  # a list would raise TypeError
        raise RowError("operation", "must be i, u or d")
    return str(operation)
