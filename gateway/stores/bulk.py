"""Bulk inserts of prebuilt rows through the driver's ``executemany``: the ingest hot path.

``conn.execute(table.insert(), [dict, ...])`` runs every value of every row through SQLAlchemy's
type processors, which costs more than the insert itself when a file brings 1,000,000 rows. Here
the values are encoded once, the way those processors would store them, so the rows read back the
same through the Core tables: ``UtcDateTime`` as naive UTC text on SQLite and an aware datetime on
PostgreSQL, ``Date`` as ISO text on SQLite, JSON with the stores' serializer (``jsonb`` on
PostgreSQL). One write shares one ``BulkValues``: a batch's timestamps are encoded once, a record
written to several tables is serialised once, a business key hashed once.

JSON goes to SQLite as orjson's UTF-8 bytes under ``CAST(? AS TEXT)``: the column gets the same
TEXT as from a ``str``, without decoding the bytes to a ``str`` that the driver then encodes back
to UTF-8 (for a 1.5 kB record in Chinese, those two conversions cost more than the insert).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any

import orjson
from sqlalchemy import JSON, Connection, Table

from gateway.errors import ConfigError
from gateway.stores.db import dumps_json
from gateway.stores.keys import BusinessKey, key_hash

_SQLITE_DATETIME = "%Y-%m-%d %H:%M:%S.%f"  # SQLAlchemy's storage format for SQLite DATETIME


class BulkValues:
    """Encodes values for one dialect, memoised for the duration of one write."""

    def __init__(self, dialect: str, secret: bytes | None) -> None:
        if dialect not in ("sqlite", "postgresql"):
            raise ConfigError(f"stores.url: unsupported database {dialect!r}")
        self.dialect = dialect
        self._sqlite = dialect == "sqlite"
        self._secret = secret
        self._times: dict[datetime, Any] = {}
        self._json: dict[int, tuple[object, str | bytes]] = {}
        self._hashes: dict[tuple[str, tuple[str | None, ...]], str] = {}

    @classmethod
    def of(cls, conn: Connection, secret: bytes | None) -> BulkValues:
        return cls(conn.dialect.name, secret)

    def ts(self, moment: datetime | None) -> Any:
        """An aware datetime as ``UtcDateTime`` stores it (None stays None)."""
        if moment is None:
            return None
        found = self._times.get(moment)
        if found is None:
            if moment.tzinfo is None:
                raise ValueError("UtcDateTime needs an aware datetime")
            utc = moment.astimezone(UTC)
            found = utc.replace(tzinfo=None).strftime(_SQLITE_DATETIME) if self._sqlite else utc
            self._times[moment] = found
        return found

    def day(self, value: date) -> Any:
        return value.isoformat() if self._sqlite else value

    def json(self, value: Any) -> str | bytes:
        """JSON for a JSON column (see ``json_once``); the same object (a record accepted and queued
        for several adapters) is serialised once."""
        if value is None or isinstance(value, str | int | float | bool):
            return self.json_once(value)
        found = self._json.get(id(value))
        if found is not None and found[0] is value:
            return found[1]
        text = self.json_once(value)
        self._json[id(value)] = (value, text)  # the value is held, so its id is not reused meanwhile
        return text

    def json_once(self, value: Any) -> str | bytes:
        """JSON for a JSON column, not memoised (a value written once): UTF-8 bytes for SQLite
        (``_insert_sql`` casts them to TEXT), text for PostgreSQL (cast to ``jsonb``)."""
        if self._sqlite:
            return orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS)
        return dumps_json(value)

    def key_hash(self, kind: str, key: BusinessKey) -> str:
        memo = (kind, tuple(key))
        found = self._hashes.get(memo)
        if found is None:
            found = self._hashes[memo] = key_hash(kind, key, self._secret)
        return found


def insert_rows(conn: Connection, table: Table, columns: tuple[str, ...], rows: Sequence[tuple[Any, ...]],
                *, on_conflict: tuple[str, ...] | None = None) -> None:
    """``INSERT INTO table (columns) VALUES (...)`` for every tuple, as one ``executemany``;
    with ``on_conflict``, rows clashing on those columns are skipped (a re-sent batch)."""
    if rows:
        conn.exec_driver_sql(_insert_sql(conn.dialect.name, table, columns, on_conflict), list(rows))


def insert_row_id(conn: Connection, table: Table, columns: tuple[str, ...], row: tuple[Any, ...]) -> int:
    """``INSERT`` one prebuilt row (encoded as for ``insert_rows``); returns its generated ``id``."""
    sql = _insert_sql(conn.dialect.name, table, columns, None) + " RETURNING id"
    return int(conn.exec_driver_sql(sql, row).scalar_one())


def by_key_hashes_sql(dialect: str, table: str, columns: tuple[str, ...], kind: str, digests: Sequence[str], *,
                      also: str = "", order_by: tuple[str, ...] = (),
                      latest: tuple[str, ...] = ()) -> tuple[str, tuple[Any, ...]]:
    """``SELECT columns FROM table WHERE kind = ? AND business_key_hash IN (digests) [AND also]
    [ORDER BY order_by]`` and its parameters, for a (kind, business_key_hash, ...) index. With
    ``latest``, only each key's row that comes last in that order (``order_by`` is then moot).

    On PostgreSQL the same rows as one probe of that index per key, whatever the statistics: on a
    table not analysed yet (a new deployment, a bulk load ahead of autovacuum) the planner read the
    IN list as a scan of every row of the kind, filtered (ingest's snapshot: 11.7 ms for 140 keys
    among 30,000 records, growing with the table; 0.8 ms as probes). The LATERAL subquery's
    ``OFFSET 0`` (or ``LIMIT 1``) keeps it from being flattened back into that scan and a hash
    join; one array parameter keeps the statement text the same, so psycopg can prepare it.

    ``latest`` reads one row per key, not every version of it: a key sent 20,000 times (a test
    peer's three penalties, a device's status) made each snapshot read all 20,000, 36 ms a page.
    Its first column is looked up as ``max()`` (one step down the index), the rest only break ties
    among that column's equal values; a sort of every version before ``LIMIT 1`` is what the
    planners chose for ``ORDER BY first DESC, rest DESC LIMIT 1`` without statistics. On SQLite a
    VALUES list of the keys gives each its correlated lookup, which finds that row's rowid."""
    condition = f" AND {also}" if also else ""

    def newest(mark: str) -> str:
        first, rest = latest[0], latest[1:]
        ties = f" ORDER BY {', '.join(f'{c} DESC' for c in rest)}" if rest else ""
        return (f" AND {first} = (SELECT max({first}) FROM {table} WHERE kind = {mark}"  # noqa: S608
                f" AND business_key_hash = k.h{condition}){ties} LIMIT 1")

    if dialect == "postgresql":
        inner = ", ".join(dict.fromkeys((*columns, *order_by)))
        order = f" ORDER BY {', '.join(f'x.{c}' for c in order_by)}" if order_by and not latest else ""
        return (f"SELECT {', '.join(f'x.{c}' for c in columns)} FROM unnest(%s::varchar[]) AS k(h)"  # noqa: S608
                f" CROSS JOIN LATERAL (SELECT {inner} FROM {table} WHERE kind = %s AND business_key_hash = k.h"
                f"{condition}{newest('%s') if latest else ' OFFSET 0'}) AS x{order}",
                (list(digests), kind, *([kind] if latest else [])))
    if latest:
        keys = ", ".join(["(?)"] * len(digests))
        return (f"WITH k(h) AS (VALUES {keys}) SELECT {', '.join(columns)} FROM {table} WHERE rowid IN"  # noqa: S608
                f" (SELECT (SELECT rowid FROM {table} WHERE kind = ? AND business_key_hash = k.h{condition}"
                f"{newest('?')}) FROM k)", (*digests, kind, kind))
    order = f" ORDER BY {', '.join(order_by)}" if order_by else ""
    return (f"SELECT {', '.join(columns)} FROM {table} WHERE kind = {marks(dialect, 1)}{condition}"  # noqa: S608
            f" AND business_key_hash IN ({marks(dialect, len(digests))}){order}", (kind, *digests))


def marks(dialect: str, count: int) -> str:
    """``count`` positional placeholders in the driver's own style (sqlite3: ``?``, psycopg: ``%s``)."""
    mark = "?" if dialect == "sqlite" else "%s"
    return ", ".join([mark] * count)


@lru_cache(maxsize=64)
def _insert_sql(dialect: str, table: Table, columns: tuple[str, ...], on_conflict: tuple[str, ...] | None) -> str:
    if dialect == "sqlite":
        marks = ", ".join("CAST(? AS TEXT)" if isinstance(table.c[c].type, JSON) else "?" for c in columns)
    elif dialect == "postgresql":
        marks = ", ".join("CAST(%s AS jsonb)" if isinstance(table.c[c].type, JSON) else "%s" for c in columns)
    else:
        raise ConfigError(f"stores.url: unsupported database {dialect!r}")
    name = table.name if table.schema is None else f"{table.schema}.{table.name}"
    sql = f"INSERT INTO {name} ({', '.join(columns)}) VALUES ({marks})"  # noqa: S608  # our own table and columns
    if on_conflict:
        sql += f" ON CONFLICT ({', '.join(on_conflict)}) DO NOTHING"
    return sql
