"""Data quality and backlog figures on the real PostgreSQL: its JSONB and time-zone SQL differ from
SQLite's. Each test gets a schema of its own (dropped afterwards)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from tests.pg import gateway_engine
from tests.unit.test_quality import (  # noqa: F401  (run here on PostgreSQL)
    test_backlog_per_adapter_and_department,
    test_quality_figures_per_department,
    test_quality_of_one_department_only,
)

pytestmark = pytest.mark.integration



@pytest.fixture
def engine() -> Iterator[Engine]:
    with gateway_engine("sgw_quality") as engine:
        yield engine
