"""Data quality and backlog figures on the real PostgreSQL: its JSONB and time-zone SQL differ from
SQLite's. Each test gets a schema of its own (dropped afterwards)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import Engine

from gateway.stores import create_engine_for, init_schema
from tests.unit.test_quality import (  # noqa: F401  (run here on PostgreSQL)
    test_backlog_per_adapter_and_department,
    test_quality_figures_per_department,
    test_quality_of_one_department_only,
)

pytestmark = pytest.mark.integration

SERVER = "postgresql://postgres@127.0.0.1:5432/test"


def _execute(sql: str) -> None:
    with psycopg.connect(SERVER, autocommit=True) as conn:
        conn.execute(sql.encode())


@pytest.fixture
def engine() -> Iterator[Engine]:
    schema = f"sgw_quality_{uuid.uuid4().hex[:12]}"
    _execute(f"CREATE SCHEMA {schema}")
    engine = create_engine_for(f"{SERVER}?options=-csearch_path%3D{schema}")
    init_schema(engine)
    try:
        yield engine
    finally:
        engine.dispose()
        _execute(f"DROP SCHEMA {schema} CASCADE")
