"""The ex_feedback poller: rejections since a cursor, grouped per row, with their provider."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from adapters.base import OutboundRecord
from adapters.data_centre import DataCentreAdapter, DataCentreConfig, exchange_tables
from adapters.data_centre.feedback import FeedbackPoller
from gateway.errors import TargetUnavailable

DATA = Path(__file__).resolve().parent.parent / "data" / "national_platform"
SHANGHAI = ZoneInfo("Asia/Shanghai")


async def test_rejections_since_the_cursor_with_every_finding_and_the_provider(tmp_path: Path) -> None:
    config = DataCentreConfig(url=f"sqlite:///{tmp_path / 'dc.sqlite'}", create_tables=True)  # type: ignore[arg-type]
    adapter = DataCentreAdapter(config)
    records = json.loads((DATA / "batch-request.body.json").read_text(encoding="utf-8"))["records"][:2]
    results = await adapter.deliver([OutboundRecord(r["record_id"], r["record_kind"], r) for r in records])
    assert {r.status for r in results} == {"delivered"}
    penalty, inspection = records
    checked = datetime(2025, 6, 21, 9, 0, tzinfo=SHANGHAI)
    feedback = exchange_tables().feedback
    with adapter._engine.begin() as conn:  # the data centre's side
        conn.execute(feedback.insert(), {"cd_id": inspection["record_id"], "table_name": "ex_inspection",
                                         "status": "accepted", "checked_at": checked})
        conn.execute(feedback.insert(), [
            {"cd_id": penalty["record_id"], "table_name": "ex_penalty", "status": "rejected", "error_code": "DC009",
             "error_field": "submitted_at", "error_message": "超期报送", "checked_at": checked},
            {"cd_id": penalty["record_id"], "table_name": "ex_penalty", "status": "rejected", "error_code": "DC007",
             "error_field": "check_action_no", "error_message": "关联的检查行为不存在", "checked_at": checked},
        ])
    poller = FeedbackPoller(config)
    try:
        page = await poller.poll(0)
        assert page.cursor == 3 and page.accepted == [inspection["record_id"]]
        [rejection] = page.rejections
        assert rejection.record_id == penalty["record_id"] and rejection.kind == "penalty"
        assert [(f["code"], f["field"]) for f in rejection.findings] == [("DC009", "submitted_at"),
                                                                         ("DC007", "check_action_no")]
        assert "超期报送" in rejection.findings[0]["message_zh"]
        assert rejection.provider_uscc == penalty["provider_uscc"]
        assert rejection.source_record_id == penalty["source_record_id"]
        assert rejection.checked_at.astimezone(SHANGHAI) == checked
        assert (await poller.poll(page.cursor)).empty
        assert (await poller.poll(2)).rejections[0].fb_ids == (3,)
    finally:
        await poller.close()
        await adapter.close()


async def test_an_unreachable_data_centre_is_transient(tmp_path: Path) -> None:
    poller = FeedbackPoller(DataCentreConfig(url=f"sqlite:///{tmp_path / 'missing.sqlite'}",  # type: ignore[arg-type]
                                             create_tables=True))
    try:
        with pytest.raises(TargetUnavailable):
            await poller.poll(0)
    finally:
        await poller.close()
