"""The batch journal: batches sent to a target that deduplicates by batch, until settled.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sent_batches",
        sa.Column("adapter", sa.String(64), nullable=False),
        sa.Column("batch_id", sa.String(64), nullable=False),
        sa.Column("record_ids", sa.Text, nullable=False),
        sa.Column("body", sa.LargeBinary, nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("adapter", "batch_id", name="pk_sent_batches"),
        if_not_exists=True,  # a database made by create_all (adopted at the baseline) may have it
    )


def downgrade() -> None:
    op.drop_table("sent_batches", if_exists=True)
