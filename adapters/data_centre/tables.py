"""SQLAlchemy tables of the 前置库, matching ``sources/data-centre/ddl.sql`` on PostgreSQL.

On SQLite (the embedded run) the same tables use compatible types: datetimes with their offset and
decimals are kept as text so that nothing is lost, JSON as JSON text. The append-only trigger and
the pattern CHECKs exist on PostgreSQL only, as in ddl.sql.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    CHAR,
    DDL,
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Dialect,
    Index,
    Integer,
    MetaData,
    Numeric,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    event,
    func,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.types import TypeDecorator, TypeEngine

from adapters.data_centre.columns import FieldColumn, business_keys, kind_columns

SEQUENCE_TABLE = "cd_batch_sequences"


class _IsoDateTimeText(TypeDecorator[datetime]):
    """SQLite: an aware datetime as ISO 8601 text with its offset (PostgreSQL: timestamptz)."""

    impl = String(40)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> str | None:
        return None if value is None else value.isoformat()

    def process_result_value(self, value: str | None, dialect: Dialect) -> datetime | None:
        return None if value is None else datetime.fromisoformat(value)


class _DecimalText(TypeDecorator[Decimal]):
    """SQLite: a Decimal as its exact text (PostgreSQL: numeric)."""

    impl = String(64)
    cache_ok = True

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> str | None:
        return None if value is None else str(value)

    def process_result_value(self, value: str | None, dialect: Dialect) -> Decimal | None:
        return None if value is None else Decimal(value)


def sql_type(sql: str) -> TypeEngine[Any]:
    """The SQLAlchemy type for a ddl.sql type."""
    if sql.startswith("varchar("):
        return String(int(sql[8:-1]))
    if sql.startswith("numeric("):
        precision, scale = (int(p) for p in sql[8:-1].split(","))
        return _DecimalText().with_variant(Numeric(precision, scale), "postgresql")
    return _SIMPLE[sql]()


_SIMPLE: dict[str, Callable[[], TypeEngine[Any]]] = {
    "text": Text,
    "date": Date,
    "integer": Integer,
    "boolean": Boolean,
    "timestamptz": lambda: _IsoDateTimeText().with_variant(postgresql.TIMESTAMP(timezone=True), "postgresql"),
    "timestamp(0)": lambda: DateTime().with_variant(postgresql.TIMESTAMP(precision=0), "postgresql"),
    "jsonb": lambda: JSON().with_variant(postgresql.JSONB(), "postgresql"),
    "char(1)": lambda: CHAR(1),
}


@dataclass(frozen=True, slots=True)
class ExchangeTables:
    metadata: MetaData
    kinds: dict[str, Table]
    feedback: Table
    sequences: Table


@lru_cache(maxsize=8)
def exchange_tables(schema: str | None = None, standard_version: str = "1.0") -> ExchangeTables:
    """The ``ex_<kind>`` tables, ``ex_feedback`` and the batch sequence table, in one MetaData."""
    metadata = MetaData(schema=schema)
    _append_only_function(metadata, schema)
    keys = business_keys(standard_version)
    kinds = {kind: _kind_table(metadata, kind, columns, keys[kind])
             for kind, columns in kind_columns(standard_version).items()}
    return ExchangeTables(metadata, kinds, _feedback_table(metadata), _sequence_table(metadata))


def _exchange_columns() -> list[Column[Any]]:
    return [
        Column("cd_id", sql_type("varchar(100)"), nullable=False),
        # No server default (ddl.sql's is PostgreSQL-only): the adapter always writes cd_time.
        Column("cd_time", sql_type("timestamp(0)"), nullable=False),
        Column("cd_source", sql_type("varchar(50)"), nullable=False),
        Column("cd_batch", sql_type("varchar(13)"), nullable=False),
        Column("cd_operation", sql_type("char(1)"), nullable=False),
        Column("record_unique_identity", sql_type("varchar(100)"), nullable=False),
    ]


def _kind_table(metadata: MetaData, kind: str, columns: tuple[FieldColumn, ...],
                key: tuple[str, ...]) -> Table:
    name = f"ex_{kind}"
    table = Table(
        name, metadata,
        *_exchange_columns(),
        *(Column(c.name, sql_type(c.sql), nullable=not c.not_null) for c in columns),
        PrimaryKeyConstraint("cd_id", name=f"pk_{name}"),
        CheckConstraint("cd_operation IN ('i', 'u', 'd')", name=f"ck_{name}_op"),
        CheckConstraint("cd_batch ~ '^[0-9]{13}$'", name=f"ck_{name}_batch").ddl_if(dialect="postgresql"),
        CheckConstraint("cd_source ~ '^[0-9]{6}\\|[0-9A-Z]{18}$'", name=f"ck_{name}_source"
                        ).ddl_if(dialect="postgresql"),
        Index(f"ix_{name}_batch", "cd_batch"),
        Index(f"ix_{name}_time", "cd_time"),
        Index(f"ix_{name}_rui", "record_unique_identity"),
    )
    if key:
        Index(f"ix_{name}_bk", *(table.c[k] for k in key), table.c.cd_time)
    _append_only_trigger(table)
    return table


def _feedback_table(metadata: MetaData) -> Table:
    table = Table(
        "ex_feedback", metadata,
        Column("fb_id", BigInteger().with_variant(Integer(), "sqlite"), autoincrement=True),
        Column("cd_id", String(100), nullable=False),
        Column("table_name", String(40), nullable=False),
        Column("status", String(8), nullable=False),
        Column("error_code", String(16)),
        Column("error_field", String(64)),
        Column("error_message", String(1000)),
        Column("checked_at", sql_type("timestamptz"), nullable=False, server_default=func.now()),
        PrimaryKeyConstraint("fb_id", name="pk_ex_feedback"),
        CheckConstraint("status IN ('accepted', 'rejected')", name="ck_ex_feedback_status"),
        CheckConstraint("(status = 'rejected') = (error_code IS NOT NULL)", name="ck_ex_feedback_error"),
        CheckConstraint("table_name ~ '^ex_[a-z_]+$'", name="ck_ex_feedback_table"
                        ).ddl_if(dialect="postgresql"),
        Index("ix_ex_feedback_cd_id", "cd_id"),
        Index("ix_ex_feedback_checked", "checked_at"),
    )
    _append_only_trigger(table)
    return table


def _sequence_table(metadata: MetaData) -> Table:
    """Not part of the 前置库: where the embedded run keeps its cd_batch sequence (the gateway's
    stores have a table of the same shape, ``gateway.stores.SqlBatchSequence``)."""
    return Table(
        SEQUENCE_TABLE, metadata,
        Column("target", String(64), nullable=False),
        Column("day", Date, nullable=False),
        Column("last_seq", Integer, nullable=False),
        PrimaryKeyConstraint("target", "day", name=f"pk_{SEQUENCE_TABLE}"),
    )


def _prefix(schema: str | None) -> str:
    return f'"{schema}".' if schema else ""


def _append_only_function(metadata: MetaData, schema: str | None) -> None:
    # '%%' because DDL() applies %-formatting to its statement.
    function = DDL(  # type: ignore[no-untyped-call]
        f"CREATE OR REPLACE FUNCTION {_prefix(schema)}ex_append_only() RETURNS trigger "
        "LANGUAGE plpgsql AS $$ BEGIN "
        "RAISE EXCEPTION '%% is append-only (%% refused)', TG_TABLE_NAME, TG_OP; END; $$"
    ).execute_if(dialect="postgresql")
    event.listen(metadata, "before_create", function)


def _append_only_trigger(table: Table) -> None:
    trigger = DDL(  # type: ignore[no-untyped-call]
        f"CREATE TRIGGER tg_{table.name}_append_only BEFORE UPDATE OR DELETE ON "
        f"{_prefix(table.schema)}{table.name} FOR EACH ROW "
        f"EXECUTE FUNCTION {_prefix(table.schema)}ex_append_only()"
    ).execute_if(dialect="postgresql")
    event.listen(table, "after_create", trigger)
