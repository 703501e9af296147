"""A delivered batch writes one journey step per receipt, shared by its outbox items
(``outbox.step_id``), instead of one "delivered" row per record: that row's random-keyed entry in
ix_journeys_record was a large share of settling a batch once the store outgrew the page cache.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A database made by create_all (adopted at the baseline) may have the column already; offline
    # (``upgrade --sql``) there is nothing to look at.
    if not op.get_context().as_sql:
        columns = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("outbox")}
        if "step_id" in columns:
            return
    # nullable, no foreign key: plain ALTER TABLE everywhere; items settled before keep NULL and
    # their records' per-record "delivered" rows
    op.add_column("outbox", sa.Column("step_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite")))


def downgrade() -> None:
    op.drop_column("outbox", "step_id")
