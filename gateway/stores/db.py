"""Engines for the gateway's stores: SQLite (embedded, WAL) or PostgreSQL (psycopg 3), same code.

SQLite needs two fixes to behave like a database with real transactions: pysqlite's own
transaction handling is switched off and SQLAlchemy emits ``BEGIN`` itself (otherwise SELECTs run
outside the transaction and savepoints do not work), and the connection may be used from worker
threads because the runtime calls the stores through ``asyncio.to_thread``.
"""

from __future__ import annotations

import os
import sqlite3
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, Engine, create_engine, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.pool import StaticPool

from gateway.errors import ConfigError, StoreUnavailable

SQLITE_BUSY_TIMEOUT_MS = 10_000
READ_ONLY_OPTION = "sgw_read_only"
SQLITE_CHECKPOINT_PAGES = 8_000  # ~32 MB of WAL: a commit checkpoints itself past this (the fallback)
# The runtime checkpoints its store in the background (``checkpoint_wal``) once the WAL holds this
# much, so that commits rarely pass SQLITE_CHECKPOINT_PAGES and stall on a checkpoint of their own.
WAL_CHECKPOINT_BYTES = 8 * 1024 * 1024
WAL_TRUNCATE_BYTES = 128 * 1024 * 1024
# Per connection, in KiB. An ingest batch's transaction dirties a page of each index keyed by record
# id or key hash per record (random keys); with SQLite's default 2 MB the cache spilled within the
# transaction and read pages back (measured: store write 76-84 -> 62-75 us CPU per record).
SQLITE_CACHE_KIB = 16_384
# A SQLite file engine -> the pool its ``reading`` connections come from (see ``_sqlite_engine``).
_READERS: weakref.WeakKeyDictionary[Engine, Engine] = weakref.WeakKeyDictionary()
# Providers cut idle connections (the 前置库 after 30 min); recycle well before that.
POOL_RECYCLE_S = 1_500


def dumps_json(value: Any) -> str:
    """JSON for JSON columns: orjson is several times faster than json; str() for Decimal and the like."""
    return orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS).decode()


def loads_json(text: str | bytes) -> Any:
    return orjson.loads(text)


def create_engine_for(url: str) -> Engine:
    """An Engine for a store URL: ``sqlite:///path/file.db`` or ``postgresql://...`` (psycopg 3)."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return _sqlite_engine(parsed)
    if backend == "postgresql":
        return _postgresql_engine(parsed)
    raise ConfigError(f"stores.url: unsupported database {backend!r} (use sqlite or postgresql)")


def _postgresql_engine(url: URL) -> Engine:
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    return create_engine(url, pool_pre_ping=True, pool_recycle=POOL_RECYCLE_S,
                         json_serializer=dumps_json, json_deserializer=loads_json)


def _sqlite_engine(url: URL) -> Engine:
    """One connection for everything but ``reading``, which has a pool of its own.

    SQLite lets one writer in at a time whatever the pool (``BEGIN IMMEDIATE``), but every
    connection drops its whole page cache when it sees that another one committed: with ingest,
    claims and settlements on connections of their own, each transaction began by reading back
    the index pages the previous one had changed. On one connection the cache stays warm
    (measured: 10-15 % less gateway CPU per MQTT message). Writers queue for it as they queued
    for the lock, up to the same timeout."""
    database = url.database or ""

    def sqlite_engine(**pool: Any) -> Engine:
        made = create_engine(url, connect_args={"check_same_thread": False}, json_serializer=dumps_json,
                             json_deserializer=loads_json, **pool)
        install_sqlite_pragmas(made)
        return made

    if _in_memory(database):
        return sqlite_engine(poolclass=StaticPool)
    Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = sqlite_engine(pool_size=1, max_overflow=0, pool_timeout=SQLITE_BUSY_TIMEOUT_MS / 1000)
    readers = _READERS[engine] = sqlite_engine()
    event.listen(engine, "engine_disposed", lambda _engine: readers.dispose())
    return engine


def install_sqlite_pragmas(engine: Engine) -> None:
    """WAL, synchronous=NORMAL, foreign keys, busy timeout, and SQLAlchemy-managed BEGIN IMMEDIATE
    (DEFERRED for connections that only read)."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")  # first: the WAL switch may wait
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            # Checkpoints less often write a page changed by many commits (index pages) once; the
            # WAL stays bounded.
            cursor.execute(f"PRAGMA wal_autocheckpoint={SQLITE_CHECKPOINT_PAGES}")
            cursor.execute("PRAGMA temp_store=MEMORY")
            cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        # IMMEDIATE takes the write lock up front: a deferred transaction that reads, then writes,
        # fails with SQLITE_BUSY at once when another writer got in between (the busy timeout
        # cannot help it), and the publisher and the delivery workers write concurrently.
        # A connection that only reads says so (``READ_ONLY``): in WAL it then neither waits for
        # nor holds up the writer (ingest reads the next batch's history while one is written).
        read_only = connection.get_execution_options().get(READ_ONLY_OPTION, False)
        connection.exec_driver_sql("BEGIN DEFERRED" if read_only else "BEGIN IMMEDIATE")


def reading(engine: Engine) -> Connection:
    """A connection for reads only (no write lock taken on SQLite, and not the writers' one):
    ``with reading(engine) as conn``."""
    return _READERS.get(engine, engine).connect().execution_options(**{READ_ONLY_OPTION: True})


def checkpoint_wal(engine: Engine) -> bool:
    """Checkpoint a SQLite WAL holding ``WAL_CHECKPOINT_BYTES`` or more (whether one ran).
    Blocking; the runtime calls it from a thread of its own every ``CHECKPOINT_INTERVAL_S``, so
    that the pages ingest and delivery commit are copied into the database beside them, not by the
    commit that happens to fill the WAL (which then stalled for 50-110 ms).

    PASSIVE waits for nobody: writers go on appending, and frames a reader still needs are left for
    the next time. But readers overlap writers (``reading``), so the WAL may never find a moment to
    start over: past ``WAL_TRUNCATE_BYTES`` the checkpoint waits for them (TRUNCATE, up to the busy
    timeout) and empties the file, else every page read would search a longer WAL index."""
    if not is_sqlite_file(engine):
        return False
    try:
        size = os.path.getsize(f"{engine.url.database}-wal")
    except OSError:
        return False
    if size < WAL_CHECKPOINT_BYTES:
        return False
    raw = _READERS.get(engine, engine).raw_connection()  # not the writers' connection: they go on
    try:
        cursor = raw.cursor()
        cursor.execute(f"PRAGMA wal_checkpoint({'TRUNCATE' if size >= WAL_TRUNCATE_BYTES else 'PASSIVE'})")
        cursor.close()
    except sqlite3.Error:  # best effort: the data is committed either way
        return False
    finally:
        raw.close()
    return True


def is_sqlite_file(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite" and not _in_memory(engine.url.database or "")


def _in_memory(database: str) -> bool:
    """A SQLite database name that is no file (no WAL beside it, one shared connection)."""
    return database in ("", ":memory:") or database.startswith("file::memory:")


def init_schema(engine: Engine) -> None:
    """Bring the stores' tables to the latest Alembic revision (``gateway.stores.migrations``);
    a database made by the former ``create_all`` is adopted. Blocking: call it off the event loop."""
    from gateway.stores.migrations import upgrade  # alembic is imported only when a store is opened

    with translate_errors("migrating the store tables"):
        upgrade(engine)


@contextmanager
def translate_errors(action: str) -> Iterator[None]:
    """Turn a database failure into ``StoreUnavailable``: the caller must not acknowledge anything."""
    try:
        yield
    except PoolTimeout as exc:  # SQLite: the writers' connection stayed busy past the busy timeout
        raise StoreUnavailable(f"store unavailable while {action}: the database stayed busy") from exc
    except DBAPIError as exc:
        reason = str(exc.orig).splitlines()[0] if exc.orig is not None else type(exc).__name__
        raise StoreUnavailable(f"store unavailable while {action}: {reason}") from exc
