"""An accepted record stored once; the outbox and journey indexes keep only what their queries need.

``outbox.payload`` may be NULL: ingest queues a record it accepts in the same transaction without
a copy of it, and the outbox reads it from ``accepted_records`` (a 1 kB record written twice
doubled the bytes of every ingest write and of every claim and settle of the row). Rows queued
before this revision keep their payload.

``ix_journeys_envelope`` becomes partial (``envelope_id IS NOT NULL``): delivery's steps, one per
record and attempt, have no envelope, and only cost entries in it. ``ix_outbox_key_order`` becomes
partial (items pending or in flight, the only ones the claim's per-key check looks for): it holds
the backlog instead of every item ever queued, so an ingest write no longer touches a page of a
growing index per record (their business key hashes are random). ``ix_outbox_due`` goes: claims
walk ``ix_outbox_claim`` (pending items in id order; in-flight ones are a few batches), and every
claim and settle moved each item's entry in it.

On SQLite the outbox table is rebuilt (``batch_alter_table``) to drop NOT NULL, with its rows,
from the table as revision 0003 left it (``copy_from``: no reflection, so ``upgrade --sql`` works).

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

IN_ENVELOPE = "envelope_id IS NOT NULL"
ON_THE_WAY = "state IN ('pending', 'inflight')"
JSON_TYPE = sa.JSON().with_variant(JSONB(), "postgresql")


def _outbox_at_0003() -> sa.Table:
    """The outbox as revisions 0001 and 0002 made it (0003 left it alone)."""
    table = sa.Table(
        "outbox", sa.MetaData(),
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("adapter", sa.String(64), nullable=False),
        sa.Column("record_id", sa.String(36), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("business_key_hash", sa.String(64)),
        sa.Column("department", sa.String(64)),
        sa.Column("payload", JSON_TYPE, nullable=False),
        sa.Column("enqueued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(16), server_default="pending", nullable=False),
        sa.Column("last_error", sa.Text()),
        sa.Column("updated_at", sa.DateTime(timezone=True)),
        sa.CheckConstraint("state IN ('pending', 'inflight', 'done', 'dead')", name="ck_outbox_state"),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
        sa.UniqueConstraint("adapter", "record_id", name="uq_outbox_adapter_record"),
    )
    sa.Index("ix_outbox_due", table.c.adapter, table.c.state, table.c.next_attempt_at, table.c.id)
    sa.Index("ix_outbox_claim", table.c.adapter, table.c.state, table.c.id)
    sa.Index("ix_outbox_key_order", table.c.adapter, table.c.business_key_hash, table.c.id)
    return table


def upgrade() -> None:
    with op.batch_alter_table("outbox", copy_from=_outbox_at_0003()) as batch:
        batch.alter_column("payload", existing_type=JSON_TYPE, nullable=True)
    op.drop_index("ix_journeys_envelope", table_name="journeys")
    op.create_index("ix_journeys_envelope", "journeys", ["envelope_id"],
                    sqlite_where=sa.text(IN_ENVELOPE), postgresql_where=sa.text(IN_ENVELOPE))
    op.drop_index("ix_outbox_key_order", table_name="outbox")
    op.create_index("ix_outbox_key_order", "outbox", ["adapter", "business_key_hash", "id"],
                    sqlite_where=sa.text(ON_THE_WAY), postgresql_where=sa.text(ON_THE_WAY))
    op.drop_index("ix_outbox_due", table_name="outbox")


def downgrade() -> None:
    op.create_index("ix_outbox_due", "outbox", ["adapter", "state", "next_attempt_at", "id"])
    op.drop_index("ix_outbox_key_order", table_name="outbox")
    op.create_index("ix_outbox_key_order", "outbox", ["adapter", "business_key_hash", "id"])
    op.drop_index("ix_journeys_envelope", table_name="journeys")
    op.create_index("ix_journeys_envelope", "journeys", ["envelope_id"])
    op.execute("UPDATE outbox SET payload = (SELECT accepted_records.record FROM accepted_records"
               " WHERE accepted_records.record_id = outbox.record_id) WHERE payload IS NULL")
    with op.batch_alter_table("outbox") as batch:
        batch.alter_column("payload", existing_type=JSON_TYPE, nullable=False)
