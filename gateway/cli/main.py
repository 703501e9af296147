"""The ``sgw`` command line: run, check, map, demo, keys."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from gateway.errors import ConfigError

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Supervision Gateway (互联网+监管 integration gateway)")
keys_app = typer.Typer(no_args_is_help=True, help="Department API keys.")
app.add_typer(keys_app, name="keys")

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
def run(config: ConfigOption = None) -> None:
    """Run the gateway (embedded default when no servers are configured)."""
    from gateway.cli import run_cmd

    try:
        run_cmd.run(config)
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


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
