"""The engine for the 前置库: PostgreSQL via psycopg 3, or a SQLite file in the embedded run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, create_engine, event, make_url
from sqlalchemy.pool import StaticPool

from gateway.errors import ConfigError

# The 前置库 cuts idle connections after 30 min: a pooled connection is replaced before (by age, so
# before it has been idle that long). No pre-ping (a round trip per transaction): a connection
# lost otherwise fails its statement, the batch is retried, and the pool drops the connection.
POOL_RECYCLE_S = 1_500
SQLITE_BUSY_TIMEOUT_MS = 10_000
# Page cache per connection, filled as needed (SQLite's default: 2 MiB). An ex_ row goes into five
# indexes, cd_id's at random places: with 2 MiB their pages were read again from the file at every
# batch, ~7 µs of system time per row; ~4 µs with 16 MiB.
SQLITE_CACHE_KIB = 16_384
# Pages of a new database file (an existing one keeps its own): an ex_ row of Chinese texts takes
# about 1 KiB, and a batch's rows and index entries went to the WAL as a few hundred 4 KiB pages,
# each its own write and, at checkpoint, its own copy. In 16 KiB pages SQLite's part of a batch of
# 1,000 penalty rows took ~20% less CPU (2-3 µs per row).
SQLITE_PAGE_BYTES = 16_384


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def create_target_engine(url: str) -> Engine:
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        if parsed.drivername in ("postgresql", "postgres"):
            parsed = parsed.set(drivername="postgresql+psycopg")
        return create_engine(parsed, pool_recycle=POOL_RECYCLE_S, json_serializer=_dumps)
    if backend != "sqlite":
        raise ConfigError(f"adapters.data_centre.url: unsupported database {backend!r}")
    database = parsed.database or ""
    in_memory = database in ("", ":memory:")
    if not in_memory:
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    extra: dict[str, Any] = {"poolclass": StaticPool} if in_memory else {}
    engine = create_engine(parsed, connect_args={"check_same_thread": False}, json_serializer=_dumps, **extra)
    _sqlite_transactions(engine)
    return engine


def _sqlite_transactions(engine: Engine) -> None:
    """Larger pages for a new file, WAL, a busy timeout and a larger page cache; SQLAlchemy emits BEGIN
    itself so that savepoints work."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA page_size={SQLITE_PAGE_BYTES}")  # before WAL, which writes the header
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN")
