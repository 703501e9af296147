"""Indexes for claims, per-key ordering and the quality figures, on databases that lack them.

``create_all`` added these only when the modules declaring them (outbox, quality) had been
imported first, so a database adopted at 0001 may or may not have them: IF NOT EXISTS.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

DUPLICATE_STEP = "event = 'duplicate'"


def upgrade() -> None:
    op.create_index("ix_outbox_claim", "outbox", ["adapter", "state", "id"], if_not_exists=True)
    op.create_index("ix_outbox_key_order", "outbox", ["adapter", "business_key_hash", "id"], if_not_exists=True)
    op.create_index("ix_accepted_records_department", "accepted_records", ["department", "accepted_at"],
                    if_not_exists=True)
    op.create_index("ix_rejections_rejected_at", "rejections", ["department", "rejected_at"], if_not_exists=True)
    # Partial: only duplicate steps get an entry, so the ingest path pays nothing.
    op.create_index("ix_journeys_duplicates", "journeys", ["at"], if_not_exists=True,
                    sqlite_where=sa.text(DUPLICATE_STEP), postgresql_where=sa.text(DUPLICATE_STEP))


def downgrade() -> None:
    for name, table in (("ix_journeys_duplicates", "journeys"), ("ix_rejections_rejected_at", "rejections"),
                        ("ix_accepted_records_department", "accepted_records"),
                        ("ix_outbox_key_order", "outbox"), ("ix_outbox_claim", "outbox")):
        op.drop_index(name, table_name=table, if_exists=True)
