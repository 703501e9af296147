"""The data-centre adapter on the real PostgreSQL (127.0.0.1:5432, database test), a schema of its
own per test: the write scenarios of the SQLite unit tests, and what only a server does (a
connection lost under the adapter, a text PostgreSQL cannot hold)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date

import pytest
from pydantic import SecretStr
from sqlalchemy import Engine

from adapters.data_centre import DataCentreAdapter, DataCentreConfig
from gateway.stores import create_engine_for
from tests.pg import execute, fresh_schema, schema_url
from tests.unit.test_data_centre import (  # noqa: F401  (fixtures and tests run here on PostgreSQL)
    NOW,
    Clock,
    adapter,
    clock,
    penalty,
    rows_of,
    test_a_batch_takes_its_number_only_when_it_is_written,
    test_absent_values_are_null,
    test_records_of_several_layouts_and_any_text_in_one_batch,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def schema() -> Iterator[str]:
    with fresh_schema("sgw_dc") as name:
        yield name


@pytest.fixture
def target_url(schema: str) -> str:
    return schema_url(schema)


@pytest.fixture
def target(target_url: str) -> Iterator[Engine]:
    engine = create_engine_for(target_url)
    yield engine
    engine.dispose()


class _Numbers:
    """The gateway's sequence, in short."""

    def __init__(self) -> None:
        self.last = 0

    def next_value(self, target: str, day: date) -> int:
        self.last += 1
        return self.last


@pytest.mark.parametrize("own_sequence", [True, False], ids=["sequence-in-target", "gateway-sequence"])
async def test_a_lost_connection_fails_one_batch_which_is_retried(target_url: str, target: Engine,
                                                                  own_sequence: bool) -> None:
    """No pre-ping: a pooled connection the server dropped fails the batch's first statement (the
    sequence's, or the COPY), which is a retry (not a failure), and the pool does not hand that
    connection out again: the batch sent again is written."""
    name = f"sgw_dc_{uuid.uuid4().hex[:10]}"
    config = DataCentreConfig(url=SecretStr(f"{target_url}&application_name={name}"), create_tables=True)
    data_centre = DataCentreAdapter(config, clock=Clock(NOW), sequence=None if own_sequence else _Numbers())
    try:
        [first] = await data_centre.deliver([penalty(record_id="00000000-0000-4000-8000-0000000000e1")])
        assert first.status == "delivered"
        execute(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = '{name}'")
        second = penalty(record_id="00000000-0000-4000-8000-0000000000e2")
        [lost] = await data_centre.deliver([second])
        assert (lost.status, lost.code) in {("retry", "TARGET_UNAVAILABLE"), ("delivered", None)}
        [again] = await data_centre.deliver([second])
        assert again.status == "delivered"
    finally:
        await data_centre.close()
    assert [r["cd_id"] for r in rows_of(target, "penalty")] == [first.record_id, second.record_id]


async def test_a_text_postgresql_cannot_hold_is_refused_alone(adapter: DataCentreAdapter,  # noqa: F811 (the fixture)
                                                              target: Engine) -> None:
    nul = penalty(record_id="00000000-0000-4000-8000-0000000000f1", penalty_result="a\x00b")
    good = penalty(record_id="00000000-0000-4000-8000-0000000000f2")
    results = {r.record_id: r for r in await adapter.deliver([nul, good])}
    assert (results[nul.record_id].status, results[nul.record_id].code) == ("rejected", "TARGET_CONSTRAINT")
    assert results[good.record_id].status == "delivered"
    assert [r["cd_id"] for r in rows_of(target, "penalty")] == [good.record_id]
