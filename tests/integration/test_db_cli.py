"""``sgw db``: upgrade a fresh database, report where it is, and print the SQL for a DBA."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import create_engine, inspect
from typer.testing import CliRunner

from gateway.cli.main import app
from gateway.stores import migrations


def _config(tmp_path: Path) -> Path:
    path = tmp_path / "gateway.yaml"
    path.write_text(json.dumps({"stores": {"database_url": f"sqlite:///{tmp_path / 'gw.sqlite'}"}}), encoding="utf-8")
    return path


def test_upgrade_then_current_reports_head(tmp_path: Path) -> None:
    config = _config(tmp_path)
    runner = CliRunner()
    before = runner.invoke(app, ["db", "current", "-c", str(config)])
    assert before.exit_code == 0 and before.output.startswith("none")
    upgraded = runner.invoke(app, ["db", "upgrade", "-c", str(config)])
    assert upgraded.exit_code == 0, upgraded.output
    assert upgraded.output.strip() == f"at {migrations.head_revision()}"
    after = runner.invoke(app, ["db", "current", "-c", str(config)])
    assert after.output.startswith(migrations.head_revision())
    engine = create_engine(f"sqlite:///{tmp_path / 'gw.sqlite'}")
    try:
        assert set(inspect(engine).get_table_names()) >= migrations.BASELINE_TABLES
    finally:
        engine.dispose()


def test_upgrade_sql_prints_the_ddl_without_touching_a_database(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["db", "upgrade", "--sql", "postgresql"])
    assert result.exit_code == 0, result.output
    assert "CREATE TABLE accepted_records" in result.output
    assert "CREATE TABLE audit_log" in result.output
    assert not list(tmp_path.iterdir())


def test_upgrade_sql_for_sqlite_rebuilds_the_outbox_without_a_database() -> None:
    result = CliRunner().invoke(app, ["db", "upgrade", "--sql", "sqlite"])
    assert result.exit_code == 0, result.output
    assert "ALTER TABLE _alembic_tmp_outbox RENAME TO outbox" in result.output


def test_history_lists_the_revisions_newest_first() -> None:
    result = CliRunner().invoke(app, ["db", "history"])
    assert result.exit_code == 0
    lines = result.output.strip().splitlines()
    assert f" -> {migrations.head_revision()} (head)" in lines[0]
    assert lines[-1].startswith("<base> -> 0001")
