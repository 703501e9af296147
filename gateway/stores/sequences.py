"""Persisted per (target, day) submission sequences, for the data centre's ``cd_batch``.

A number is taken in its own committed transaction, so it is never handed out twice, even when
the submission that took it fails.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import Engine
from sqlalchemy.dialects import postgresql, sqlite

from gateway.errors import ConfigError
from gateway.stores.db import translate_errors
from gateway.stores.schema import cd_batch_sequences


class SqlBatchSequence:
    """Implements ``adapters.data_centre.BatchSequence`` on the stores' database."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def next_value(self, target: str, day: date) -> int:
        """1 for the first submission of the day to ``target``, then 2, 3, ..."""
        t = cd_batch_sequences
        dialect = self._engine.dialect.name
        if dialect not in ("postgresql", "sqlite"):
            raise ConfigError(f"stores.url: unsupported database {dialect!r}")
        insert = postgresql.insert(t) if dialect == "postgresql" else sqlite.insert(t)
        stmt = (insert.values(target=target, day=day, last_seq=1)
                .on_conflict_do_update(index_elements=[t.c.target, t.c.day],
                                       set_={"last_seq": t.c.last_seq + 1})
                .returning(t.c.last_seq))
        with translate_errors("taking a batch number"), self._engine.begin() as conn:
            return int(conn.execute(stmt).scalar_one())
