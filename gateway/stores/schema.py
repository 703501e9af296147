"""The stores' tables, in one MetaData so that Alembic can autogenerate migrations from it.

Times are stored in UTC (``UtcDateTime``) so that SQLite, which has no time zones, and PostgreSQL
give back the same aware datetimes. JSON columns are JSONB on PostgreSQL and JSON text on SQLite.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    DDL,
    JSON,
    BigInteger,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Dialect,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    event,
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
    Column("variant", String(64), doc="the connector's mapping variant the record came through: a "
           "resubmission is mapped the same way (NULL: the connector's one mapping)"),
    CheckConstraint(_in("status", REJECTION_STATUSES), name="status"),
    Index("ix_rejections_key", "kind", "business_key_hash", "status"),
    Index("ix_rejections_department", "department", "status", "due_on"),
    Index("ix_rejections_due", "status", "due_on"),
    Index("ix_rejections_rejected_at", "department", "rejected_at"),  # quality: rejections of a period
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
)
# Partial: delivery steps (one per record and attempt) have no envelope, so only ingest's steps
# get an entry; a lookup by envelope (``envelope_id = ?``) implies NOT NULL and uses it.
_IN_ENVELOPE = journeys.c.envelope_id.is_not(None)
Index("ix_journeys_envelope", journeys.c.envelope_id, sqlite_where=_IN_ENVELOPE, postgresql_where=_IN_ENVELOPE)
# Partial: only duplicate steps get an entry, so the ingest path (several journey rows per record)
# pays nothing; the quality figures count the duplicates of a period with it.
_DUPLICATE_STEP = journeys.c.event == "duplicate"
Index("ix_journeys_duplicates", journeys.c.at, sqlite_where=_DUPLICATE_STEP, postgresql_where=_DUPLICATE_STEP)

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
    # The record's "accepted" journey step, when it is kept here (``journeys.accepted_steps``)
    # instead of in a journeys row of its own: NULL for records accepted with warnings, and before 0006.
    Column("envelope_id", String(64), doc="the envelope that brought it"),
    Column("location", Text, doc="where in that envelope (row, JSON path, message)"),
    Column("queued", json_type(), doc="the adapters it was queued for, in order"),
    Index("ix_accepted_records_key", "kind", "business_key_hash", "accepted_at"),
    Index("ix_accepted_records_department", "department", "accepted_at"),  # quality: a period's records
)
# Partial, like ix_journeys_envelope: an envelope's steps. One key per ingest write, so its entries
# go to one place of the index per write, not one random place per record.
_STEP_HERE = accepted_records.c.envelope_id.is_not(None)
Index("ix_accepted_records_envelope", accepted_records.c.envelope_id, sqlite_where=_STEP_HERE,
      postgresql_where=_STEP_HERE)

outbox = Table(
    "outbox",
    metadata,
    Column("id", id_type(), primary_key=True, autoincrement=True),
    Column("adapter", String(64), nullable=False),
    Column("record_id", String(36), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("business_key_hash", String(64)),
    Column("department", String(64)),
    Column("payload", json_type(), doc="NULL: the accepted record of record_id (ingest stores a record once)"),
    Column("enqueued_at", UtcDateTime(), nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", UtcDateTime(), nullable=False),
    Column("state", String(16), nullable=False, server_default="pending"),
    Column("last_error", Text),
    Column("updated_at", UtcDateTime()),
    Column("step_id", id_type(), doc=(
        "the journey step that delivered it: one step per delivered batch and receipt, shared by its "
        "items (record_id NULL); the item's record reads it as its own 'delivered' step")),
    UniqueConstraint("adapter", "record_id", name="uq_outbox_adapter_record"),
    CheckConstraint(_in("state", OUTBOX_STATES), name="state"),
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

# -- departments, their keys, and the audit log (gateway.stores.departments, gateway.stores.audit) --

DEPARTMENT_LEVELS = ("province", "city", "county")
KEY_ROLES = ("admin", "integrator", "ops", "department", "viewer")

departments = Table(
    "departments",
    metadata,
    Column("code", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("region", String(9), doc="GB/T 2260 division code of the department's area"),
    Column("level", String(16)),
    Column("uscc", String(18), doc="the agency's unified social credit code"),
    Column("contacts", json_type(), nullable=False, doc="[{name, phone, email}]: personal information"),
    Column("from_config", Integer, nullable=False, server_default="0"),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    CheckConstraint(f"level IS NULL OR {_in('level', DEPARTMENT_LEVELS)}", name="level"),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", id_type(), primary_key=True, autoincrement=True),
    Column("key_hash", String(71), nullable=False, doc="'sha256:<hex>' of the key; the key is never stored"),
    Column("name", String(64), nullable=False),
    Column("role", String(16), nullable=False),
    Column("department", String(64)),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("expires_at", UtcDateTime(), doc="set when rotated with a grace period"),
    Column("revoked_at", UtcDateTime()),
    Column("replaced_by", BigInteger().with_variant(Integer(), "sqlite")),
    UniqueConstraint("key_hash", name="uq_api_keys_key_hash"),
    CheckConstraint(_in("role", KEY_ROLES), name="role"),
    Index("ix_api_keys_department", "department"),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("seq", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=False),
    Column("at", UtcDateTime(), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("action", String(64), nullable=False),
    Column("target", String(300), nullable=False),
    Column("before", Text, doc="canonical JSON (the hashed text itself)"),
    Column("after", Text, doc="canonical JSON (the hashed text itself)"),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Index("ix_audit_log_actor", "actor", "seq"),
    Index("ix_audit_log_target", "target", "seq"),
    Index("ix_audit_log_at", "at"),
)
"""Append-only and hash-chained: ``hash`` = SHA-256 of the canonical entry and ``prev_hash``.
Triggers refuse UPDATE and DELETE; the chain shows what someone who dropped them changed."""


def _audit_log_append_only() -> None:
    refuse = "audit_log is append-only"
    for op in ("UPDATE", "DELETE"):
        event.listen(audit_log, "after_create", DDL(  # type: ignore[no-untyped-call]
            f"CREATE TRIGGER tg_audit_log_no_{op.lower()} BEFORE {op} ON audit_log "
            f"BEGIN SELECT RAISE(ABORT, '{refuse}'); END").execute_if(dialect="sqlite"))
    event.listen(audit_log, "after_create", DDL(  # type: ignore[no-untyped-call]
        "CREATE OR REPLACE FUNCTION sgw_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS "
        f"$$ BEGIN RAISE EXCEPTION '{refuse} (%% refused)', TG_OP; END; $$").execute_if(dialect="postgresql"))
    event.listen(audit_log, "after_create", DDL(  # type: ignore[no-untyped-call]
        "CREATE TRIGGER tg_audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
        "FOR EACH ROW EXECUTE FUNCTION sgw_audit_append_only()").execute_if(dialect="postgresql"))


_audit_log_append_only()

audit_head = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", BigInteger().with_variant(Integer(), "sqlite"), nullable=False),
    Column("hash", String(64), nullable=False),
)
"""One row: the chain's last seq and hash. Writers lock it (the chain is serialised on it), and
``verify`` compares it with the last entry, so removing entries from the end is detected too."""

# -- the connector and mapping registry (gateway.stores.registry) --

REGISTRY_ORIGINS = ("config", "api", "apply")

registry_connectors = Table(
    "registry_connectors",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("type", String(64), nullable=False),
    Column("department", String(64)),
    Column("enabled", Integer, nullable=False, server_default="1"),
    Column("paused", Integer, nullable=False, server_default="0"),
    Column("deleted", Integer, nullable=False, server_default="0", doc="a tombstone: deleted through the API"),
    Column("config", json_type(), nullable=False, doc="the connector's settings, as in the config file"),
    Column("version", Integer, nullable=False),
    Column("origin", String(16), nullable=False, doc="who last set it: config (seeded), api or apply"),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("updated_by", String(200), nullable=False),
    CheckConstraint(_in("origin", REGISTRY_ORIGINS), name="origin"),
)

registry_mapping_versions = Table(
    "registry_mapping_versions",
    metadata,
    Column("name", String(100), nullable=False),
    Column("version", Integer, nullable=False),
    Column("spec", Text, nullable=False, doc="the mapping's YAML text, as written"),
    Column("origin", String(16), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("created_by", String(200), nullable=False),
    PrimaryKeyConstraint("name", "version"),
    CheckConstraint(_in("origin", REGISTRY_ORIGINS), name="origin"),
)
"""Every version is kept; the highest is current."""

registry_routing = Table(
    "registry_routing",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("routes", json_type(), nullable=False),
    Column("version", Integer, nullable=False),
    Column("origin", String(16), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("updated_by", String(200), nullable=False),
)

registry_revision = Table(
    "registry_revision",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("revision", BigInteger().with_variant(Integer(), "sqlite"), nullable=False),
)
"""One row, bumped by every registry change: running instances poll it to pick changes up."""

# -- the batch journal of adapters whose target deduplicates by batch (gateway.stores.sent_batches) --

sent_batches = Table(
    "sent_batches",
    metadata,
    Column("adapter", String(64), nullable=False),
    Column("batch_id", String(64), nullable=False),
    Column("record_ids", Text, nullable=False, doc="the batch's record ids in order, one per line"),
    Column("body", LargeBinary, nullable=False, doc="the request body as sent, byte for byte"),
    Column("sent_at", UtcDateTime(), nullable=False),
    PrimaryKeyConstraint("adapter", "batch_id"),
)
"""Batches sent and not yet settled: a retry goes again as the same batch (``adapters.journal``)."""
