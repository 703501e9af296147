"""The ``sgw`` command line: run, check, map, demo, keys, dead-letters, rejections, journey."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from gateway.cli.audit_cmd import audit_app
from gateway.cli.connectors_cmd import connectors_app
from gateway.cli.db_cmd import db_app
from gateway.cli.departments_cmd import departments_app, register_key_commands
from gateway.errors import ConfigError

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Supervision Gateway (互联网+监管 integration gateway)")
keys_app = typer.Typer(no_args_is_help=True, help="Department API keys.")
app.add_typer(keys_app, name="keys")
dead_letters_app = typer.Typer(no_args_is_help=True, help="Dead letters: list, show, redrive, discard.")
app.add_typer(dead_letters_app, name="dead-letters")
rejections_app = typer.Typer(no_args_is_help=True, help="Rejections owned by the departments.")
app.add_typer(rejections_app, name="rejections")
data_centre_app = typer.Typer(no_args_is_help=True, help="The data centre's 前置库 (PostgreSQL or SQLite).")
app.add_typer(data_centre_app, name="data-centre")
app.add_typer(audit_app, name="audit")
app.add_typer(db_app, name="db")
app.add_typer(connectors_app, name="connectors")
app.add_typer(departments_app, name="departments")
register_key_commands(keys_app)

ConfigOption = Annotated[
    Path | None, typer.Option("--config", "-c", help="Gateway config YAML.", exists=True, dir_okay=False)
]
EXIT_USAGE = 2
DEFAULT_MAPPINGS = Path("config/mappings")


def _fail_config(error: ConfigError) -> None:
    typer.echo("configuration problems:", err=True)
    for problem in error.problems:
        typer.echo(f"  - {problem}", err=True)
    raise typer.Exit(EXIT_USAGE)


@app.command("map")
def map_command(
    files: Annotated[list[Path] | None, typer.Argument(help="Payload files: JSON, CSV (GBK/UTF-8), XLSX, XML.")] = None,
    mapping: Annotated[str | None, typer.Option("--mapping", "-m", help="Mapping name or YAML path.")] = None,
    list_mappings: Annotated[bool, typer.Option("--list", help="List the mappings.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="With --list: JSON output.")] = False,
    meta: Annotated[list[str] | None, typer.Option("--meta", help="Envelope metadata KEY=VALUE (repeatable).")] = None,
    mappings_dir: Annotated[Path, typer.Option("--mappings-dir", help="Folder of mapping specs.")] = DEFAULT_MAPPINGS,
) -> None:
    """Dry-run payload files through a mapping: one JSON object per record on stdout."""
    from gateway.cli import map_cmd

    try:
        if list_mappings:
            map_cmd.list_mappings(mappings_dir, as_json=as_json)
            return
        if not mapping or not files:
            typer.echo("usage: sgw map -m MAPPING FILE... | sgw map --list [--json]", err=True)
            raise typer.Exit(EXIT_USAGE)
        code = map_cmd.map_files(mapping, files, mappings_dir=mappings_dir, meta_pairs=meta or [])
    except ConfigError as exc:
        _fail_config(exc)
    raise typer.Exit(code)


@app.command()
def check(config: ConfigOption = None) -> None:
    """Validate the config, load every mapping and run every golden example."""
    from gateway.cli import check_cmd

    try:
        problems = check_cmd.check(config)
    except ConfigError as exc:
        _fail_config(exc)
    for line in problems:
        typer.echo(line, err=True)
    if problems:
        raise typer.Exit(1)
    typer.echo("ok")


@app.command()
def run(
    config: ConfigOption = None,
    role: Annotated[list[str] | None, typer.Option(
        "--role", help="Run only this part (ingest: connectors; delivery: adapters' workers); repeatable. "
                       "Default: the config's roles (both).")] = None,
) -> None:
    """Run the gateway (embedded default when no servers are configured)."""
    from gateway.cli import run_cmd

    try:
        run_cmd.run(config, roles=tuple(role) if role else None)
    except ConfigError as exc:
        _fail_config(exc)


@app.command()
def demo(
    workdir: Annotated[Path, typer.Option(help="Where the demo keeps its SQLite files.")] = Path("var/demo"),
    once: Annotated[bool, typer.Option("--once", help="Exit after the demo data has flowed.")] = False,
    port: Annotated[int, typer.Option(help="HTTP port of the API.")] = 8080,
) -> None:
    """Run the embedded gateway with demo data flowing from the sample sources."""
    from gateway.cli import demo_cmd

    try:
        demo_cmd.demo(workdir, once=once, port=port)
    except ConfigError as exc:
        _fail_config(exc)


@keys_app.command("new")
def keys_new() -> None:
    """Generate a department API key; prints the key (shown once) and the hash for the config."""
    from gateway.auth import new_api_key

    key, digest = new_api_key()
    typer.echo(f"key:  {key}\nhash: {digest}")


AdapterOpt = Annotated[str | None, typer.Option(help="Only this adapter's.")]
KindOpt = Annotated[str | None, typer.Option(help="Only records of this kind.")]
DepartmentOpt = Annotated[str | None, typer.Option(help="Only this department's.")]
ErrorOpt = Annotated[str | None, typer.Option("--error", help="Only those whose error contains this text.")]


def _filter(adapter: str | None, kind: str | None, department: str | None, error: str | None) -> Any:
    from gateway.stores.outbox import DeadLetterFilter

    return DeadLetterFilter(adapter=adapter, kind=kind, department=department, error_contains=error)


@dead_letters_app.command("list")
def dead_letters_list(config: ConfigOption = None, adapter: AdapterOpt = None, kind: KindOpt = None,
                      department: DepartmentOpt = None, error: ErrorOpt = None, limit: int = 100) -> None:
    """List dead letters, one JSON object per line."""
    from gateway.cli import ops_cmd

    ops_cmd.list_dead_letters(config, _filter(adapter, kind, department, error), limit)


@dead_letters_app.command("show")
def dead_letters_show(item_id: str, config: ConfigOption = None) -> None:
    """A dead letter with its record and journey."""
    from gateway.cli import ops_cmd

    raise typer.Exit(ops_cmd.show_dead_letter(config, item_id))


@dead_letters_app.command("redrive")
def dead_letters_redrive(ids: Annotated[list[str] | None, typer.Argument()] = None, config: ConfigOption = None,
                         adapter: AdapterOpt = None, kind: KindOpt = None, department: DepartmentOpt = None,
                         error: ErrorOpt = None) -> None:
    """Redrive dead letters by id, or all matching the filter options."""
    from gateway.cli import ops_cmd

    try:
        ops_cmd.redrive(config, ids or [], _filter(adapter, kind, department, error))
    except ConfigError as exc:
        _fail_config(exc)


@dead_letters_app.command("discard")
def dead_letters_discard(ids: list[str], reason: Annotated[str, typer.Option(help="Why (kept in the journey).")],
                         config: ConfigOption = None) -> None:
    """Discard dead letters for good, with a reason."""
    from gateway.cli import ops_cmd

    try:
        raise typer.Exit(ops_cmd.discard(config, ids, reason))
    except ConfigError as exc:
        _fail_config(exc)


@rejections_app.command("list")
def rejections_list(config: ConfigOption = None, department: DepartmentOpt = None,
                    status: Annotated[str | None, typer.Option(help="open, resolved or superseded.")] = None,
                    due_before: Annotated[str | None, typer.Option(help="YYYY-MM-DD")] = None,
                    limit: int = 100) -> None:
    """List rejections by department, status and due date."""
    from datetime import date

    from gateway.cli import ops_cmd

    if status not in (None, "open", "resolved", "superseded"):
        typer.echo("status: open, resolved or superseded", err=True)
        raise typer.Exit(EXIT_USAGE)
    due = date.fromisoformat(due_before) if due_before else None
    ops_cmd.list_rejections(config, department, status, due, limit)  # type: ignore[arg-type]


@data_centre_app.command("migrate")
def data_centre_migrate(
    url: Annotated[str, typer.Option("--url", envvar="SGW_DATA_CENTRE_URL",
                                     help="SQLAlchemy URL of the 前置库, e.g. postgresql://user@host/qzk_jgsjzx.")],
    db_schema: Annotated[str | None, typer.Option("--schema", help="Schema of the ex_* tables, e.g. qzk.")] = None,
) -> None:
    """Create or upgrade the ex_* tables to the head migration (Alembic upgrade head)."""
    from sqlalchemy.exc import DBAPIError

    from gateway.cli import data_centre_cmd

    try:
        revision = data_centre_cmd.migrate(url, db_schema)
    except ConfigError as exc:
        _fail_config(exc)
    except DBAPIError as exc:
        typer.echo(f"migration failed: {str(exc.orig).strip().splitlines()[0] if exc.orig else exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"data centre at revision {revision}")


@app.command()
def journey(record_id: str, config: ConfigOption = None) -> None:
    """Every step of a record: received, queued, each attempt and receipt at every target."""
    from gateway.cli import ops_cmd

    raise typer.Exit(ops_cmd.journey(config, record_id))


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
