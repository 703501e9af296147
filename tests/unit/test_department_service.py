"""Departments and keys through the service: identifiers checked, config departments seeded and
merged, deletion refused while connectors are assigned, every change audited (SQLite here; the
same tests run on PostgreSQL in tests/integration/test_access_stores_postgres.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from gateway.departments import Conflict, DepartmentService, DepartmentSpec, Invalid, NotFound
from gateway.settings import DepartmentSettings
from gateway.stores.api_keys import KeyStore
from gateway.stores.audit import SqlAuditLog
from gateway.stores.db import create_engine_for, init_schema
from gateway.stores.departments import Contact, DepartmentStore

USCC = "11330106002500121C"


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = create_engine_for(f"sqlite:///{tmp_path / 'departments.sqlite'}")
    init_schema(engine)
    yield engine
    engine.dispose()


def service(engine: Engine, assigned: dict[str, str | None] | None = None) -> DepartmentService:
    return DepartmentService(DepartmentStore(engine), KeyStore(engine), audit=SqlAuditLog(engine),
                             connectors_of=lambda: dict(assigned or {}))


def test_config_departments_are_seeded_and_merged_without_losing_api_edits(engine: Engine) -> None:
    store = DepartmentStore(engine)
    assert store.seed([DepartmentSettings(code="eco", name="生态", provider_uscc=USCC)]) == 1
    service(engine).update("eco", {"level": "省", "contacts": [Contact("李四", "13900001111")]}, actor="admin:a")
    assert store.seed([DepartmentSettings(code="eco", name="生态环境厅", admin_division_code="330000")]) == 0
    eco = store.get("eco")
    assert eco is not None and eco.from_config
    assert (eco.name, eco.uscc, eco.region, eco.level) == ("生态环境厅", USCC, "330000", "province")
    assert eco.contacts == (Contact("李四", "13900001111"),)


def test_identifiers_and_levels_are_checked(engine: Engine) -> None:
    svc = service(engine)
    with pytest.raises(Invalid) as bad:
        svc.create(DepartmentSpec(code="m", name="市场", uscc=USCC[:-1] + "0", region="33010"), actor="admin:a")
    assert {f["field"] for f in bad.value.fields} == {"uscc", "region"}
    with pytest.raises(Invalid):
        svc.create(DepartmentSpec(code="m", name="市场", level="乡"), actor="admin:a")
    created = svc.create(DepartmentSpec(code="m", name="市场", uscc=USCC, region="330106", level="县"), actor="admin:a")
    assert created.level == "county"
    with pytest.raises(Conflict):
        svc.create(DepartmentSpec(code="m", name="again"), actor="admin:a")
    with pytest.raises(NotFound):
        svc.update("nope", {"name": "x"}, actor="admin:a")


def test_a_department_with_connectors_or_from_config_is_not_deleted_and_deletion_revokes_keys(engine: Engine) -> None:
    svc = service(engine, {"market-push": "m"})
    svc.create(DepartmentSpec(code="m", name="市场"), actor="admin:a")
    with pytest.raises(Conflict) as in_use:
        svc.delete("m", actor="admin:a")
    assert in_use.value.code == "DEPARTMENT_IN_USE" and svc.connectors("m") == ["market-push"]
    DepartmentStore(engine).seed([DepartmentSettings(code="eco", name="生态")])
    with pytest.raises(Conflict):
        service(engine).delete("eco", actor="admin:a")

    free = service(engine)
    key = free.issue_key(name="m", role="department", department="m", actor="admin:a")
    free.delete("m", actor="admin:a")
    assert KeyStore(engine).find_active(key.key) is None
    actions = [e.action for e in reversed(SqlAuditLog(engine).list())]
    assert actions == ["department.create", "key.issue", "department.delete"]
    assert SqlAuditLog(engine).verify().ok


def test_key_roles_and_departments_must_agree(engine: Engine) -> None:
    svc = service(engine)
    with pytest.raises(Invalid):
        svc.issue_key(name="x", role="department", department=None, actor="admin:a")
    with pytest.raises(Invalid):
        svc.issue_key(name="x", role="ops", department="eco", actor="admin:a")
    with pytest.raises(Invalid):
        svc.issue_key(name="x", role="root", department=None, actor="admin:a")
    with pytest.raises(NotFound):
        svc.issue_key(name="x", role="department", department="nope", actor="admin:a")
    issued = svc.issue_key(name="li", role="ops", department=None, actor="admin:a")
    assert issued.key not in str(issued.record.as_dict())
    assert svc.revoke_key(issued.record.id, actor="admin:a").revoked_at is not None
    with pytest.raises(Conflict):
        svc.rotate_key(issued.record.id, grace_s=0, actor="admin:a")
