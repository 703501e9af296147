"""A PostgreSQL schema of its own per test, on the local server, dropped afterwards."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from sqlalchemy import Engine

from gateway.stores.db import create_engine_for, init_schema

SERVER = "postgresql://postgres@127.0.0.1:5432/test"


def execute(sql: str) -> None:
    with psycopg.connect(SERVER, autocommit=True) as conn:
        conn.execute(sql.encode())  # bytes: several statements, no parameters


def schema_url(schema: str) -> str:
    """The server's URL with ``schema`` first on the search path."""
    return f"{SERVER}?options=-csearch_path%3D{schema}"


@contextmanager
def fresh_schema(prefix: str) -> Iterator[str]:
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    execute(f"CREATE SCHEMA {name}")
    try:
        yield name
    finally:
        execute(f"DROP SCHEMA {name} CASCADE")


@contextmanager
def gateway_engine(prefix: str) -> Iterator[Engine]:
    """An engine on a fresh schema holding the gateway's stores."""
    with fresh_schema(prefix) as schema:
        engine = create_engine_for(schema_url(schema))
        try:
            init_schema(engine)
            yield engine
        finally:
            engine.dispose()
