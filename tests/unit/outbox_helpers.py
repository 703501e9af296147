"""Records queued straight into a gateway store's outbox, for the delivery worker's tests."""

from __future__ import annotations

from datetime import UTC, datetime

from gateway.durable import SqlGatewayStore
from gateway.stores.outbox import OutboxRow


def queue(store: SqlGatewayStore, *record_ids: str) -> None:
    now = datetime.now(UTC)
    store.outbox.put_many([OutboxRow(adapter="t", record_id=rid, kind="penalty", payload={"record_id": rid},
                                     enqueued_at=now, business_key=(rid,)) for rid in record_ids])
