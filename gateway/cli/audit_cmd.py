"""``sgw audit verify|list``: walk the audit log's hash chain; list its entries (JSON lines).

Both open the database named by the config directly, so they work whether or not a gateway runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import orjson
import typer
from sqlalchemy import Engine

ConfigOption = Annotated[
    Path | None, typer.Option("--config", "-c", help="Gateway config YAML.", exists=True, dir_okay=False)
]
audit_app = typer.Typer(no_args_is_help=True, help="The audit log: verify its hash chain, list entries.")


@contextmanager
def opened_engine(config: Path | None) -> Iterator[Engine]:
    from gateway.settings import load_settings
    from gateway.stores.db import create_engine_for, init_schema

    engine = create_engine_for(load_settings(config).stores.database_url)
    try:
        init_schema(engine)
        yield engine
    finally:
        engine.dispose()


def _when(text: str | None) -> datetime | None:
    if text is None:
        return None
    moment = datetime.fromisoformat(text)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


@audit_app.command("verify")
def verify(config: ConfigOption = None) -> None:
    """Walk the hash chain; exit 1 and name the first bad entry when a row was changed, removed or reordered."""
    from gateway.stores.audit import SqlAuditLog

    with opened_engine(config) as engine:
        result = SqlAuditLog(engine).verify()
    typer.echo(orjson.dumps({"ok": result.ok, "entries": result.entries, "first_bad_seq": result.first_bad_seq,
                             "reason": result.reason}).decode())
    if not result.ok:
        typer.echo(f"audit log tampered at seq {result.first_bad_seq}: {result.reason}", err=True)
        raise typer.Exit(1)


@audit_app.command("list")
def list_entries(config: ConfigOption = None,
                 actor: Annotated[str | None, typer.Option(help="Only this actor's (e.g. admin:admin).")] = None,
                 action: Annotated[str | None, typer.Option(help="Only this action (e.g. key.revoke).")] = None,
                 target: Annotated[str | None, typer.Option(help="Only this target (e.g. department:eco).")] = None,
                 since: Annotated[str | None, typer.Option(help="ISO time; UTC when no zone is given.")] = None,
                 until: Annotated[str | None, typer.Option(help="ISO time; UTC when no zone is given.")] = None,
                 limit: int = 100) -> None:
    """Audit entries, newest first, one JSON object per line."""
    from gateway.stores.audit import AuditFilter, SqlAuditLog

    where = AuditFilter(actor=actor, action=action, target=target, since=_when(since), until=_when(until))
    with opened_engine(config) as engine:
        entries = SqlAuditLog(engine).list(where, limit=limit)
    for entry in entries:
        typer.echo(orjson.dumps(entry.as_dict()).decode())
