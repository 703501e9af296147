"""The stores' tables, in one MetaData so that Alembic can autogenerate migrations from it.

Times are stored in UTC (``UtcDateTime``) so that SQLite, which has no time zones, and PostgreSQL
give back the same aware datetimes. JSON columns are JSONB on PostgreSQL and JSON text on SQLite.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Dialect,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator, TypeEngine

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = MetaData(naming_convention=NAMING)

REJECTION_STATUSES = ("open", "resolved", "superseded")
OUTBOX_STATES = ("pending", "inflight", "done", "dead")


class UtcDateTime(TypeDecorator[datetime]):
    """An aware datetime stored as UTC; naive values are refused rather than guessed."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("UtcDateTime needs an aware datetime")
        utc = value.astimezone(UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def json_type() -> TypeEngine[Any]:
    return JSON().with_variant(JSONB(), "postgresql")


def id_type() -> TypeEngine[int]:
    # SQLite autoincrements only an INTEGER PRIMARY KEY.
    return BigInteger().with_variant(Integer(), "sqlite")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


rejections = Table(
    "rejections",
    metadata,
    Column("id", id_type(), primary_key=True, autoincrement=True),
    Column("record_id", String(36)),
    Column("kind", String(32), nullable=False),
    Column("business_key", Text, doc="canonical JSON of the key; NULL when the kind's key holds PII"),
    Column("business_key_hash", String(64)),
    Column("department", String(64)),
    Column("connector", String(64), nullable=False),
    Column("target", String(64), doc="NULL: rejected by the gateway; else the target that rejected it"),
    Column("source_record_id", String(100)),
    Column("raw_payload", json_type()),
    Column("errors", json_type(), nullable=False),
    Column("warnings", json_type(), nullable=False),
    Column("location", String(500)),
    Column("status", String(16), nullable=False, server_default="open"),
    Column("rejected_at", UtcDateTime(), nullable=False),
    Column("due_on", Date, nullable=False),
    Column("resolved_at", UtcDateTime()),
    Column("resolved_by_record_id", String(36)),
    CheckConstraint(_in("status", REJECTION_STATUSES), name="status"),
    Index("ix_rejections_key", "kind", "business_key_hash", "status"),
    Index("ix_rejections_department", "department", "status", "due_on"),
    Index("ix_rejections_due", "status", "due_on"),
)

journeys = Table(
    "journeys",
    metadata,
    Column("id", id_type(), primary_key=True, autoincrement=True),
    Column("record_id", String(36)),
    Column("envelope_id", String(64)),
    Column("event", String(32), nullable=False),
    Column("target", String(64)),
    Column("detail", json_type()),
    Column("at", UtcDateTime(), nullable=False),
    Index("ix_journeys_record", "record_id", "at"),
    Index("ix_journeys_envelope", "envelope_id"),
)

accepted_records = Table(
    "accepted_records",
    metadata,
    Column("record_id", String(36), primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("business_key_hash", String(64), nullable=False),
    Column("business_key", Text, doc="canonical JSON of the key; NULL when the kind's key holds PII"),
    Column("operation", String(1), nullable=False),
    Column("source_record_id", String(100)),
    Column("department", String(64)),
    Column("connector", String(64), nullable=False),
    Column("record", json_type(), nullable=False),
    Column("accepted_at", UtcDateTime(), nullable=False),
    Index("ix_accepted_records_key", "kind", "business_key_hash", "accepted_at"),
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", id_type(), primary_key=True, autoincrement=True),
    Column("adapter", String(64), nullable=False),
    Column("record_id", String(36), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("business_key_hash", String(64)),
    Column("department", String(64)),
    Column("payload", json_type(), nullable=False),
    Column("enqueued_at", UtcDateTime(), nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", UtcDateTime(), nullable=False),
    Column("state", String(16), nullable=False, server_default="pending"),
    Column("last_error", Text),
    Column("updated_at", UtcDateTime()),
    UniqueConstraint("adapter", "record_id", name="uq_outbox_adapter_record"),
    CheckConstraint(_in("state", OUTBOX_STATES), name="state"),
    Index("ix_outbox_due", "adapter", "state", "next_attempt_at", "id"),
)

cd_batch_sequences = Table(
    "cd_batch_sequences",
    metadata,
    Column("target", String(64), nullable=False),
    Column("day", Date, nullable=False),
    Column("last_seq", Integer, nullable=False),
    PrimaryKeyConstraint("target", "day"),
)

connector_state = Table(
    "connector_state",
    metadata,
    Column("connector", String(64), nullable=False),
    Column("key", String(200), nullable=False),
    Column("value", json_type(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    PrimaryKeyConstraint("connector", "key"),
)
"""Per-connector durable state: poll cursors and windows, file row checkpoints (JSON values)."""
