"""The two journey steps every record takes are kept where the record already is, not in a
journeys row of their own, each of which cost an entry at a random place of ix_journeys_record
(the largest part of ingest writes and settlements once the store outgrew the page cache):

- "accepted": in its accepted_records row (``envelope_id``, ``location``, ``queued``);
- "delivered": one journeys row per delivered batch and receipt, shared by its outbox items
  (``outbox.step_id``).

Rows written before keep their journeys rows; the new columns stay NULL for them.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_JSON = sa.JSON().with_variant(JSONB(), "postgresql")
NEW_COLUMNS: dict[str, list[tuple[str, sa.types.TypeEngine[Any]]]] = {  # table -> (name, type) of its new columns
    "outbox": [("step_id", _ID)],
    "accepted_records": [("envelope_id", sa.String(64)), ("location", sa.Text()), ("queued", _JSON)],
}


def upgrade() -> None:
    # A database made by create_all (adopted at the baseline) may have them already; offline
    # (``upgrade --sql``) there is nothing to look at.
    online = not op.get_context().as_sql
    for table, columns in NEW_COLUMNS.items():
        present = {c["name"] for c in sa.inspect(op.get_bind()).get_columns(table)} if online else set()
        for name, type_ in columns:
            if name not in present:  # nullable, no default: plain ALTER TABLE everywhere
                op.add_column(table, sa.Column(name, type_))
    where = sa.text("envelope_id IS NOT NULL")
    op.create_index("ix_accepted_records_envelope", "accepted_records", ["envelope_id"], if_not_exists=True,
                    sqlite_where=where, postgresql_where=where)


def downgrade() -> None:
    op.drop_index("ix_accepted_records_envelope", table_name="accepted_records")
    for table, columns in NEW_COLUMNS.items():
        for name, _type in columns:
            op.drop_column(table, name)
