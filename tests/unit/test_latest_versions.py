"""Ingest's snapshot reads each business key's latest accepted version, however many it has."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

from gateway.stores.db import create_engine_for, init_schema
from gateway.stores.records import AcceptedRecords, AcceptedRow

T0 = datetime(2025, 6, 1, tzinfo=UTC)


def versions() -> list[AcceptedRow]:
    """k0: 300 versions, the last one deletes it; k1: three versions accepted at the same moment
    (one envelope), the tie broken by record id as before (c, a deletion); k2: one insert."""
    rows = [AcceptedRow(f"k0-{i:03d}", "penalty", ("k0",), {"operation": "d" if i == 299 else "u"}, "eco",
                        T0 + timedelta(seconds=i)) for i in range(300)]
    later = T0 + timedelta(days=1)
    rows += [AcceptedRow(rid, "penalty", ("k1",), {"operation": op}, "eco", later)
             for rid, op in (("a", "u"), ("c", "d"), ("b", "u"))]
    rows.append(AcceptedRow("k2-0", "penalty", ("k2",), {"operation": "i"}, "eco", T0))
    rows.append(AcceptedRow("other", "license", ("k2",), {"operation": "d"}, "eco", later))  # another kind
    return rows


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = create_engine_for(f"sqlite:///{tmp_path / 'gateway.sqlite'}")
    init_schema(engine)
    yield engine
    engine.dispose()


def test_the_snapshot_gives_each_keys_latest_version(engine: Engine) -> None:
    records = AcceptedRecords(engine)
    records.add(versions())
    keys = [("penalty", (k,)) for k in ("k0", "k1", "k2", "missing")]
    view = records.snapshot(["k0-000", "nope"], keys)
    assert [view.has_accepted(kind, key) for kind, key in keys] == [False, False, True, False]
    # the same answers as the store's one-key lookup
    assert [records.has_accepted(kind, key) for kind, key in keys] == [False, False, True, False]
    assert view.is_duplicate("k0-000") and not view.is_duplicate("nope")
    records.add([AcceptedRow("k0-300", "penalty", ("k0",), {"operation": "u"}, "eco", T0 + timedelta(days=2))])
    assert records.snapshot([], keys[:1]).has_accepted("penalty", ("k0",))  # updated again after the deletion
