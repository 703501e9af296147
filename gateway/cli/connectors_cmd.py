"""``sgw connectors apply -f DIR [--dry-run]`` and ``sgw connectors list``: the registry from the shell.

They open the database named by the config directly, so they work whether or not a gateway is
running; a running gateway picks changes up from the registry's revision within a few seconds.
The registry is seeded from the config file first, exactly as a starting gateway does, so the
folder is compared with what the gateway would run.
"""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import orjson
import typer

from gateway.errors import ConfigError

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from gateway.settings import Settings

connectors_app = typer.Typer(no_args_is_help=True, help="The connector registry: apply a folder, list.")

ConfigOption = Annotated[
    Path | None, typer.Option("--config", "-c", help="Gateway config YAML.", exists=True, dir_okay=False)
]
EXIT_USAGE = 2


def _fail(error: ConfigError) -> None:
    typer.echo("problems (nothing was changed):", err=True)
    for problem in error.problems:
        typer.echo(f"  - {problem}", err=True)
    raise typer.Exit(EXIT_USAGE)


@connectors_app.command("apply")
def apply_command(
    folder: Annotated[Path, typer.Option("--file", "-f", help="Folder: one connector per YAML file, "
                                         "mapping specs under mappings/.", exists=True, file_okay=False)],
    config: ConfigOption = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Report what would change; change nothing.")] = False,
) -> None:
    """Make the registry match a folder: report created, changed, removed and unchanged."""
    try:
        lines = apply(config, folder, dry_run=dry_run)
    except ConfigError as exc:
        _fail(exc)
    for line in lines:
        typer.echo(line)


@connectors_app.command("list")
def list_command(config: ConfigOption = None) -> None:
    """Every connector in the registry, one JSON object per line (secrets masked)."""
    from gateway.secrets_mask import mask_connector
    from gateway.stores.registry import SqlRegistry

    try:
        with _engine(config) as (_settings, engine):
            rows = SqlRegistry(engine).connectors()
    except ConfigError as exc:
        _fail(exc)
    for row in rows:
        typer.echo(orjson.dumps({"id": row.id, "version": row.version, "paused": row.paused, "origin": row.origin,
                                 "updated_at": row.updated_at, "updated_by": row.updated_by,
                                 "config": mask_connector(row.config)}, default=str).decode())


@contextmanager
def _engine(config: Path | None) -> Iterator[tuple[Settings, Engine]]:
    from gateway.settings import load_settings
    from gateway.stores.db import create_engine_for, init_schema

    settings = load_settings(config)
    engine = create_engine_for(settings.stores.database_url)
    try:
        init_schema(engine)
        yield settings, engine
    finally:
        engine.dispose()


def apply(config: Path | None, folder: Path, *, dry_run: bool) -> list[str]:
    from gateway.assembly import assemble
    from gateway.connector_apply import plan, read_folder
    from gateway.ingest import Ingestor
    from gateway.secrets_mask import mask_connector
    from gateway.stores.audit import SqlAuditLog
    from gateway.stores.departments import DepartmentStore
    from gateway.stores.registry import SqlRegistry

    actor = f"cli:{getpass.getuser()}"
    with _engine(config) as (settings, engine):
        registry = SqlRegistry(engine)
        catalog = assemble(settings).catalog
        texts = {name: m.spec_path.read_text(encoding="utf-8") for name, m in catalog.items()}
        departments = DepartmentStore(engine)
        configured = {d.code for d in settings.departments}
        wanted = read_folder(folder, known_mappings=set(catalog) | {m.name for m in registry.current_mappings()},
                             mappings_dir=settings.mappings_dir,
                             ingestor=Ingestor(uscc_exceptions=frozenset(settings.uscc_exceptions)),
                             department_exists=lambda code: code in configured or departments.get(code) is not None)
        if not dry_run:
            registry.seed([c.model_dump(mode="json") for c in settings.connectors], texts,
                          [r.model_dump(mode="json") for r in settings.routing])
        rows = {r.id: r for r in registry.connectors(include_deleted=True)}
        current = {cid: r.config for cid, r in rows.items() if not r.deleted}
        if dry_run:  # as the seed would leave it
            current.update({c.id: c.model_dump(mode="json") for c in settings.connectors if c.id not in rows})
        current_mappings = {**texts, **{m.name: m.spec for m in registry.current_mappings()}}
        changes = plan(current, current_mappings, wanted)
        if dry_run:
            return [*changes.lines(), "dry run: nothing was changed"]
        if not changes.changes_anything:
            return changes.lines()
        put = {cid: wanted.connectors[cid] for cid in [*changes.created, *changes.changed]}
        registry.apply(put.values(), {n: wanted.mappings[n] for n in [*changes.mappings_created,
                                                                      *changes.mappings_changed]},
                       actor=actor, remove_others=True)
        audit = SqlAuditLog(engine)
        for cid in changes.created:
            audit.record(actor, "connector.create", f"connector:{cid}", after=mask_connector(put[cid]))
        for cid in changes.changed:
            audit.record(actor, "connector.update", f"connector:{cid}", before=mask_connector(current[cid]),
                         after=mask_connector(put[cid]))
        for cid in changes.removed:
            audit.record(actor, "connector.delete", f"connector:{cid}", before=mask_connector(current[cid]))
        for name in [*changes.mappings_created, *changes.mappings_changed]:
            audit.record(actor, "mapping.update", f"mapping:{name}", after={"spec": wanted.mappings[name]})
    return changes.lines()
