"""``sgw departments list`` and ``sgw keys issue|list|rotate|revoke``: departments and the keys
stored in the database (the running gateway sees a change within seconds). Changes are audited
with the actor ``cli:<user>``.
"""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from gateway.cli.audit_cmd import ConfigOption

departments_app = typer.Typer(no_args_is_help=True, help="Departments onboarded (from the config and the API).")
EXIT_PROBLEM = 1


def _actor() -> str:
    return f"cli:{getpass.getuser()}"


def _echo(obj: Any) -> None:
    typer.echo(orjson.dumps(obj, default=str).decode())


@contextmanager
def opened_service(config: Path | None) -> Iterator[Any]:
    from gateway.departments import DepartmentProblem, DepartmentService
    from gateway.settings import load_settings
    from gateway.stores.api_keys import KeyStore
    from gateway.stores.audit import SqlAuditLog
    from gateway.stores.db import create_engine_for, init_schema
    from gateway.stores.departments import DepartmentStore

    settings = load_settings(config)
    engine = create_engine_for(settings.stores.database_url)
    try:
        init_schema(engine)
        DepartmentStore(engine).seed(settings.departments)
        yield DepartmentService(DepartmentStore(engine), KeyStore(engine), audit=SqlAuditLog(engine),
                                connectors_of=lambda: {c.id: c.department for c in settings.connectors})
    except DepartmentProblem as exc:
        typer.echo(f"{exc.code}: {exc.message_en}", err=True)
        raise typer.Exit(EXIT_PROBLEM) from exc
    finally:
        engine.dispose()


@departments_app.command("list")
def list_departments(config: ConfigOption = None) -> None:
    """Departments with their connectors, one JSON object per line (contacts counted, not shown)."""
    with opened_service(config) as service:
        for d in service.departments.list(limit=10_000):
            _echo({**d.audit_view(), "from_config": d.from_config, "connectors": service.connectors(d.code)})


def keys_issue(config: ConfigOption = None,
               department: Annotated[str | None, typer.Option(help="A department key for this department.")] = None,
               role: Annotated[str, typer.Option(help="admin, integrator, ops, viewer or department.")] = "department",
               name: Annotated[str | None, typer.Option(help="Who holds it (default: the department).")] = None,
               ) -> None:
    """Issue a key stored (hashed) in the database; prints the key once."""
    if name is None and department is None:
        typer.echo("--name is needed for a staff token", err=True)
        raise typer.Exit(2)
    with opened_service(config) as service:
        issued = service.issue_key(name=name or department, role=role, department=department, actor=_actor())
    _echo({"key": issued.key, **issued.record.as_dict()})


def keys_list(config: ConfigOption = None, department: Annotated[str | None, typer.Option()] = None,
              include_inactive: Annotated[bool, typer.Option("--all", help="Revoked and expired too.")] = False,
              ) -> None:
    """Keys stored in the database, fingerprints only, one JSON object per line."""
    with opened_service(config) as service:
        for key in service.keys.list(department=department, include_inactive=include_inactive, limit=10_000):
            _echo(key.as_dict())


def keys_rotate(key_id: int, config: ConfigOption = None,
                grace_s: Annotated[float, typer.Option(help="Seconds the old key keeps working.")] = 0.0) -> None:
    """A new key for the same holder; prints it once. The old one ends after the grace period."""
    with opened_service(config) as service:
        issued = service.rotate_key(key_id, grace_s=grace_s, actor=_actor())
    _echo({"key": issued.key, **issued.record.as_dict(), "replaces": key_id})


def keys_revoke(key_id: int, config: ConfigOption = None) -> None:
    """Revoke a key at once."""
    with opened_service(config) as service:
        _echo(service.revoke_key(key_id, actor=_actor()).as_dict())


def register_key_commands(keys_app: typer.Typer) -> None:
    keys_app.command("issue")(keys_issue)
    keys_app.command("list")(keys_list)
    keys_app.command("rotate")(keys_rotate)
    keys_app.command("revoke")(keys_revoke)
