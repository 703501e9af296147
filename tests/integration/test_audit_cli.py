"""``sgw audit verify|list`` and ``sgw keys issue|list|revoke`` as processes: a changed row of the
audit log is found and named by its seq (exit 1)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from tests.conftest import MAPPINGS
from tests.integration.test_cli import lines, sgw

pytestmark = pytest.mark.integration


def config(tmp_path: Path) -> Path:
    path = tmp_path / "gateway.yaml"
    path.write_text(json.dumps({
        "mappings_dir": str(MAPPINGS),
        "stores": {"database_url": f"sqlite:///{tmp_path / 'gateway.sqlite'}"},
        "departments": [{"code": "eco", "name": "生态环境局"}],
    }), encoding="utf-8")
    return path


def test_keys_issued_on_the_command_line_are_audited_and_a_changed_row_is_found(tmp_path: Path) -> None:
    cfg = str(config(tmp_path))
    issued = sgw("keys", "issue", "--department", "eco", "-c", cfg)
    assert issued.returncode == 0, issued.stderr
    key = json.loads(issued.stdout)
    assert key["key"].startswith("sgw_") and key["department"] == "eco"
    staff = sgw("keys", "issue", "--role", "ops", "--name", "li", "-c", cfg)
    assert staff.returncode == 0, staff.stderr
    assert sgw("keys", "revoke", str(key["id"]), "-c", cfg).returncode == 0
    listed = lines(sgw("keys", "list", "--all", "-c", cfg).stdout)
    assert [(k["role"], k["active"]) for k in listed] == [("department", False), ("ops", True)]
    assert key["key"] not in json.dumps(listed)

    entries = lines(sgw("audit", "list", "-c", cfg).stdout)
    assert [e["action"] for e in entries] == ["key.revoke", "key.issue", "key.issue"]
    assert all(e["actor"].startswith("cli:") for e in entries)
    ok = sgw("audit", "verify", "-c", cfg)
    assert ok.returncode == 0 and json.loads(ok.stdout)["entries"] == 3

    with sqlite3.connect(tmp_path / "gateway.sqlite") as conn:
        conn.execute("DROP TRIGGER tg_audit_log_no_update")  # as the database's owner could
        conn.execute("UPDATE audit_log SET actor = 'cli:someone-else' WHERE seq = 2")
    tampered = sgw("audit", "verify", "-c", cfg)
    assert tampered.returncode == 1
    assert json.loads(tampered.stdout)["first_bad_seq"] == 2
    assert "seq 2" in tampered.stderr


def test_an_unknown_department_is_refused_with_its_code(tmp_path: Path) -> None:
    done = sgw("keys", "issue", "--department", "nope", "-c", str(config(tmp_path)))
    assert done.returncode == 1 and "DEPARTMENT_UNKNOWN" in done.stderr
    assert sgw("departments", "list", "-c", str(config(tmp_path))).stdout.count('"code":"eco"') == 1
