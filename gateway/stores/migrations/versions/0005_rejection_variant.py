"""Rejections keep the mapping variant their record came through, so that a department's
resubmission of a batch-file row (csv, xlsx or xml) is mapped as the file's rows were.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A database made by create_all (adopted at the baseline) may have the column already; offline
    # (``upgrade --sql``) there is nothing to look at.
    if not op.get_context().as_sql:
        columns = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("rejections")}
        if "variant" in columns:
            return
    op.add_column("rejections", sa.Column("variant", sa.String(64)))  # nullable: plain ALTER TABLE everywhere


def downgrade() -> None:
    op.drop_column("rejections", "variant")
