"""The gateway's stores: SQLAlchemy Core on SQLite (embedded) or PostgreSQL, the same code.

All classes are synchronous; the runtime calls them through ``asyncio.to_thread``. Database
failures surface as ``gateway.errors.StoreUnavailable``.
"""

from __future__ import annotations

from gateway.stores.db import create_engine_for, init_schema
from gateway.stores.journeys import JourneyEntry, JourneyEvent, JourneyLog, JourneyRow
from gateway.stores.keys import canonical_key, key_hash, pii_key_kinds
from gateway.stores.outbox import Outbox, OutboxItem, OutboxRow
from gateway.stores.records import AcceptedRecords, AcceptedRow
from gateway.stores.rejections import (
    RejectedRow,
    Rejection,
    RejectionsLedger,
    RejectionStatus,
    WorkingDays,
    due_date,
)
from gateway.stores.schema import metadata
from gateway.stores.sequences import SqlBatchSequence
from gateway.stores.sql_outbox import SqlOutbox
from gateway.stores.writer import IngestWriter

__all__ = [
    "AcceptedRecords",
    "AcceptedRow",
    "IngestWriter",
    "JourneyEntry",
    "JourneyEvent",
    "JourneyLog",
    "JourneyRow",
    "Outbox",
    "OutboxItem",
    "OutboxRow",
    "RejectedRow",
    "Rejection",
    "RejectionStatus",
    "RejectionsLedger",
    "SqlBatchSequence",
    "SqlOutbox",
    "WorkingDays",
    "canonical_key",
    "create_engine_for",
    "due_date",
    "init_schema",
    "key_hash",
    "metadata",
    "pii_key_kinds",
]
