"""Ingest reads the accepted-record history once per envelope (BatchView) and judges records as if
they had arrived one by one: duplicates across envelopes, and versions of one key within one."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gateway.durable import SqlGatewayStore
from gateway.envelope import Envelope
from gateway.ingest import Ingestor
from gateway.stores.db import create_engine_for, init_schema
from mapping.calendar import WorkingCalendar
from mapping.compiler import load_mapping
from tests.conftest import MAPPINGS, SAMPLES


def items() -> list[dict[str, Any]]:
    page = json.loads((SAMPLES / "eco-rest" / "penalties-page-1.json").read_text(encoding="utf-8"))
    found: list[dict[str, Any]] = page["items"]
    return found


def envelope(payload: list[dict[str, Any]]) -> Envelope:
    return Envelope(connector="eco", payload=payload, received_at=datetime.now(UTC), records_inline=True)


def test_history_is_read_once_per_envelope_and_follows_the_batch(tmp_path: Path) -> None:
    engine = create_engine_for(f"sqlite:///{tmp_path / 'g.sqlite'}")
    init_schema(engine)
    store = SqlGatewayStore(engine, WorkingCalendar())
    mapping = load_mapping(MAPPINGS / "eco-rest.penalty.yaml")
    ingestor = Ingestor()
    first, second = items()[:2]
    changed = copy.deepcopy(first)
    changed["penaltyContent"] = first["penaltyContent"] + "（更正）"

    outcomes = ingestor.evaluate(mapping, envelope([first, changed]), store.index)
    assert [o.status for o in outcomes] == ["accepted", "accepted"]
    assert outcomes[0].record["operation"] == "i"
    # The second is a new version of a key the batch already holds: an update (COM-005).
    assert outcomes[1].record["operation"] == "u"
    assert "RULE:COM-005" in {w.code for w in outcomes[1].warnings}
    store.write(envelope([first, changed]), outcomes, lambda kind: ())

    again = ingestor.evaluate(mapping, envelope([first, second]), store.index)
    assert [o.status for o in again] == ["duplicate", "accepted"]
    engine.dispose()


def test_rows_of_a_chunked_file_are_located_by_their_file_row() -> None:
    from gateway.locations import locator

    chunk = locator(payload_format="csv", meta={"row_offset": 500, "row_numbers": [501, 503]})
    assert chunk("[1]", 1, "处罚决定日期") == "row 503, column 处罚决定日期"
    assert locator(payload_format="csv", meta={"row_offset": 500})("[0]", 0, None) == "row 501"
    assert locator(payload_format="csv", meta={})("[4]", 4, "证件号码") == "row 5, column 证件号码"
    assert locator(payload_format="json", meta={"location": "p1.json"})("items[2]", 2, "id") == "p1.json:$.items[2].id"
