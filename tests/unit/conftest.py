"""Fixtures of the unit tests: an embedded gateway store (a test module's own ``store`` wins)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.durable import SqlGatewayStore
from gateway.stores.db import create_engine_for, init_schema
from mapping.calendar import WorkingCalendar


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlGatewayStore]:
    engine = create_engine_for(f"sqlite:///{tmp_path / 'gateway.sqlite'}")
    init_schema(engine)
    yield SqlGatewayStore(engine, WorkingCalendar())
    engine.dispose()
