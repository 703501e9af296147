"""One transaction per ingest batch: accepted records, rejections, journeys and outbox rows together.

"Durable write before acknowledge": when ``write`` returns, everything is committed; when it
raises ``StoreUnavailable``, nothing is, and the connector must not acknowledge its source.
Accepting a record resolves the open rejections of its business key in the same transaction.
Re-writing the same batch (the source re-sent it after a lost acknowledgement) adds no duplicate
accepted record nor outbox row.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Engine

from gateway.stores.bulk import BulkValues
from gateway.stores.db import translate_errors
from gateway.stores.journeys import JourneyRow, insert_journeys
from gateway.stores.outbox import OutboxRow, insert_outbox
from gateway.stores.records import AcceptedRow, insert_accepted
from gateway.stores.rejections import (
    RejectedRow,
    Resolution,
    WorkingDays,
    insert_rejections,
    resolve_keys,
)


class IngestWriter:
    def __init__(self, engine: Engine, calendar: WorkingDays, *, key_secret: bytes | None = None) -> None:
        self._engine = engine
        self._calendar = calendar
        self._secret = key_secret

    def write(self, accepted: Sequence[AcceptedRow], rejected: Sequence[RejectedRow],
              journeys: Sequence[JourneyRow], outbox: Sequence[OutboxRow]) -> None:
        with translate_errors("writing an ingest batch"), self._engine.begin() as conn:
            values = BulkValues.of(conn, self._secret)  # shared: each record serialised, each key hashed once
            insert_accepted(conn, accepted, self._secret, values)
            resolve_keys(conn, [Resolution(row.kind, values.key_hash(row.kind, row.business_key),
                                           row.record_id, row.accepted_at) for row in accepted])
            insert_rejections(conn, rejected, self._calendar, self._secret)
            insert_journeys(conn, journeys, values)
            insert_outbox(conn, outbox, self._secret, values)
