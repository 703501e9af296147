"""The connector and mapping registry: connectors, every version of every mapping, and the routing.

Precedence between the config file and the registry: what the config file (``connectors``,
``routing``) and ``mappings_dir`` hold seeds the registry at start. A seeded entry (origin
``config``) keeps following the file; once it is changed through the API (origin ``api``) or by
``sgw connectors apply`` (origin ``apply``) the registry wins and the file no longer touches it.
A connector deleted through the API stays as a tombstone, so the file does not bring it back.

Every change bumps one revision number, which running instances poll to pick changes up.
Blocking I/O: call it off the event loop.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import Connection, Engine, func, select

from gateway.stores.db import translate_errors
from gateway.stores.schema import (
    registry_connectors,
    registry_mapping_versions,
    registry_revision,
    registry_routing,
)

Origin = Literal["config", "api", "apply"]
SEEDER = "config-file"
_ROUTING_ROW = 1
_REVISION_ROW = 1


@dataclass(frozen=True, slots=True)
class ConnectorRow:
    id: str
    config: dict[str, Any]   # ConnectorSettings as JSON (id, type, mapping(s), department, meta, options)
    paused: bool
    deleted: bool
    version: int
    origin: str
    updated_at: datetime
    updated_by: str


@dataclass(frozen=True, slots=True)
class MappingVersion:
    name: str
    version: int
    spec: str
    origin: str
    created_at: datetime
    created_by: str


@dataclass(frozen=True, slots=True)
class RoutingRow:
    routes: list[dict[str, Any]]
    version: int
    origin: str
    updated_at: datetime
    updated_by: str


@dataclass(slots=True)
class SeedReport:
    connectors_added: list[str] = field(default_factory=list)
    connectors_updated: list[str] = field(default_factory=list)
    connectors_removed: list[str] = field(default_factory=list)
    mappings_added: list[str] = field(default_factory=list)
    mappings_updated: list[str] = field(default_factory=list)
    routing: str = "unchanged"


def _connector(row: Any) -> ConnectorRow:
    return ConnectorRow(id=row.id, config=dict(row.config), paused=bool(row.paused), deleted=bool(row.deleted),
                        version=row.version, origin=row.origin, updated_at=row.updated_at, updated_by=row.updated_by)


def _mapping(row: Any) -> MappingVersion:
    return MappingVersion(name=row.name, version=row.version, spec=row.spec, origin=row.origin,
                          created_at=row.created_at, created_by=row.created_by)


class SqlRegistry:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    # -- reading --

    def revision(self) -> int:
        with translate_errors("reading the registry revision"), self._engine.connect() as conn:
            found = conn.execute(select(registry_revision.c.revision).where(
                registry_revision.c.id == _REVISION_ROW)).scalar_one_or_none()
        return int(found or 0)

    def connectors(self, *, include_deleted: bool = False) -> list[ConnectorRow]:
        query = select(registry_connectors).order_by(registry_connectors.c.id)
        if not include_deleted:
            query = query.where(registry_connectors.c.deleted == 0)
        with translate_errors("reading the connectors"), self._engine.connect() as conn:
            return [_connector(r) for r in conn.execute(query)]

    def connector(self, connector_id: str) -> ConnectorRow | None:
        """The connector, or None when it does not exist or was deleted."""
        with translate_errors("reading a connector"), self._engine.connect() as conn:
            found = self._connector_row(conn, connector_id)
        return None if found is None or found.deleted else found

    def current_mappings(self) -> list[MappingVersion]:
        latest = (select(registry_mapping_versions.c.name, func.max(registry_mapping_versions.c.version).label("v"))
                  .group_by(registry_mapping_versions.c.name).subquery())
        query = (select(registry_mapping_versions)
                 .join(latest, (registry_mapping_versions.c.name == latest.c.name)
                       & (registry_mapping_versions.c.version == latest.c.v))
                 .order_by(registry_mapping_versions.c.name))
        with translate_errors("reading the mappings"), self._engine.connect() as conn:
            return [_mapping(r) for r in conn.execute(query)]

    def mapping_versions(self, name: str) -> list[MappingVersion]:
        """Every version of a mapping, oldest first (empty: no such mapping)."""
        query = (select(registry_mapping_versions).where(registry_mapping_versions.c.name == name)
                 .order_by(registry_mapping_versions.c.version))
        with translate_errors("reading a mapping"), self._engine.connect() as conn:
            return [_mapping(r) for r in conn.execute(query)]

    def mapping_version(self, name: str, version: int) -> MappingVersion | None:
        query = select(registry_mapping_versions).where(registry_mapping_versions.c.name == name,
                                                        registry_mapping_versions.c.version == version)
        with translate_errors("reading a mapping version"), self._engine.connect() as conn:
            found = conn.execute(query).first()
        return None if found is None else _mapping(found)

    def routing(self) -> RoutingRow | None:
        with translate_errors("reading the routing"), self._engine.connect() as conn:
            found = conn.execute(select(registry_routing).where(registry_routing.c.id == _ROUTING_ROW)).first()
        if found is None:
            return None
        return RoutingRow(routes=list(found.routes), version=found.version, origin=found.origin,
                          updated_at=found.updated_at, updated_by=found.updated_by)

    # -- changing --

    def put_connector(self, config: Mapping[str, Any], *, actor: str, origin: Origin) -> ConnectorRow:
        """Create or replace a connector (a deleted one comes back); its version goes up by one."""
        with translate_errors("saving a connector"), self._engine.begin() as conn:
            row = self._put_connector(conn, dict(config), actor=actor, origin=origin)
            self._bump(conn)
        return row

    def delete_connector(self, connector_id: str, *, actor: str, origin: Origin) -> ConnectorRow | None:
        """Tombstone a connector; the row as it was, or None when there was none."""
        with translate_errors("deleting a connector"), self._engine.begin() as conn:
            before = self._connector_row(conn, connector_id)
            if before is None or before.deleted:
                return None
            self._tombstone(conn, before, actor=actor, origin=origin)
            self._bump(conn)
        return before

    def set_paused(self, connector_id: str, paused: bool, *, actor: str) -> ConnectorRow | None:
        """Pause or resume (kept across restarts, like Kafka Connect's target state); None: no such connector."""
        with translate_errors("pausing a connector"), self._engine.begin() as conn:
            before = self._connector_row(conn, connector_id)
            if before is None or before.deleted:
                return None
            if before.paused != paused:
                conn.execute(registry_connectors.update().where(registry_connectors.c.id == connector_id).values(
                    paused=int(paused), updated_at=datetime.now(UTC), updated_by=actor))
                self._bump(conn)
            after = self._connector_row(conn, connector_id)
        return after

    def add_mapping_version(self, name: str, spec: str, *, actor: str, origin: Origin) -> MappingVersion:
        """A new current version of the mapping (version 1 for a new mapping)."""
        with translate_errors("saving a mapping version"), self._engine.begin() as conn:
            version = self._add_mapping(conn, name, spec, actor=actor, origin=origin)
            self._bump(conn)
        return version

    def put_routing(self, routes: Sequence[Mapping[str, Any]], *, actor: str, origin: Origin) -> RoutingRow:
        with translate_errors("saving the routing"), self._engine.begin() as conn:
            self._put_routing(conn, [dict(r) for r in routes], actor=actor, origin=origin)
            self._bump(conn)
        found = self.routing()
        assert found is not None
        return found

    def apply(self, connectors: Iterable[Mapping[str, Any]], mappings: Mapping[str, str], *, actor: str,
              remove_others: bool) -> None:
        """In one transaction: put these connectors and mapping versions (the caller diffed and
        validated them), and with ``remove_others`` tombstone every other connector."""
        wanted = {str(c["id"]): dict(c) for c in connectors}
        with translate_errors("applying connectors"), self._engine.begin() as conn:
            for name, spec in mappings.items():
                self._add_mapping(conn, name, spec, actor=actor, origin="apply")
            for config in wanted.values():
                self._put_connector(conn, config, actor=actor, origin="apply")
            if remove_others:
                for row in conn.execute(select(registry_connectors).where(registry_connectors.c.deleted == 0)):
                    if row.id not in wanted:
                        self._tombstone(conn, _connector(row), actor=actor, origin="apply")
            self._bump(conn)

    def seed(self, connectors: Iterable[Mapping[str, Any]], mappings: Mapping[str, str],
             routes: Sequence[Mapping[str, Any]]) -> SeedReport:
        """Bring the config file's entries in (see the module docstring for who wins)."""
        report = SeedReport()
        wanted = {str(c["id"]): dict(c) for c in connectors}
        with translate_errors("seeding the registry"), self._engine.begin() as conn:
            existing = {r.id: _connector(r) for r in conn.execute(select(registry_connectors))}
            for cid, config in wanted.items():
                found = existing.get(cid)
                if found is None:
                    self._put_connector(conn, config, actor=SEEDER, origin="config")
                    report.connectors_added.append(cid)
                elif found.origin == "config" and (found.config != config or found.deleted):
                    self._put_connector(conn, config, actor=SEEDER, origin="config")
                    report.connectors_updated.append(cid)
            for cid, found in existing.items():
                if cid not in wanted and found.origin == "config" and not found.deleted:
                    self._tombstone(conn, found, actor=SEEDER, origin="config")
                    report.connectors_removed.append(cid)
            self._seed_mappings(conn, mappings, report)
            current = conn.execute(select(registry_routing).where(registry_routing.c.id == _ROUTING_ROW)).first()
            if current is None or (current.origin == "config" and list(current.routes) != [dict(r) for r in routes]):
                self._put_routing(conn, [dict(r) for r in routes], actor=SEEDER, origin="config")
                report.routing = "seeded" if current is None else "updated"
            if report.connectors_added or report.connectors_updated or report.connectors_removed \
                    or report.mappings_added or report.mappings_updated or report.routing != "unchanged":
                self._bump(conn)
        return report

    # -- in a transaction --

    def _seed_mappings(self, conn: Connection, mappings: Mapping[str, str], report: SeedReport) -> None:
        latest: dict[str, Any] = {}
        for row in conn.execute(select(registry_mapping_versions).order_by(registry_mapping_versions.c.version)):
            latest[row.name] = row
        for name, spec in sorted(mappings.items()):
            found = latest.get(name)
            if found is None:
                self._add_mapping(conn, name, spec, actor=SEEDER, origin="config")
                report.mappings_added.append(name)
            elif found.origin == "config" and found.spec != spec:
                self._add_mapping(conn, name, spec, actor=SEEDER, origin="config")
                report.mappings_updated.append(name)

    @staticmethod
    def _connector_row(conn: Connection, connector_id: str) -> ConnectorRow | None:
        found = conn.execute(select(registry_connectors).where(registry_connectors.c.id == connector_id)).first()
        return None if found is None else _connector(found)

    def _put_connector(self, conn: Connection, config: dict[str, Any], *, actor: str, origin: Origin) -> ConnectorRow:
        cid = str(config["id"])
        before = self._connector_row(conn, cid)
        values = {"type": str(config["type"]), "department": config.get("department"),
                  "enabled": int(bool(config.get("enabled", True))), "deleted": 0, "config": config,
                  "origin": origin, "updated_at": datetime.now(UTC), "updated_by": actor}
        if before is None:
            conn.execute(registry_connectors.insert().values(id=cid, version=1, paused=0, **values))
        else:
            conn.execute(registry_connectors.update().where(registry_connectors.c.id == cid).values(
                version=before.version + 1, paused=0 if before.deleted else int(before.paused), **values))
        after = self._connector_row(conn, cid)
        assert after is not None
        return after

    @staticmethod
    def _tombstone(conn: Connection, row: ConnectorRow, *, actor: str, origin: Origin) -> None:
        conn.execute(registry_connectors.update().where(registry_connectors.c.id == row.id).values(
            deleted=1, version=row.version + 1, origin=origin, updated_at=datetime.now(UTC), updated_by=actor))

    @staticmethod
    def _add_mapping(conn: Connection, name: str, spec: str, *, actor: str, origin: Origin) -> MappingVersion:
        latest = conn.execute(select(func.max(registry_mapping_versions.c.version)).where(
            registry_mapping_versions.c.name == name)).scalar_one_or_none()
        row = MappingVersion(name=name, version=int(latest or 0) + 1, spec=spec, origin=origin,
                             created_at=datetime.now(UTC), created_by=actor)
        conn.execute(registry_mapping_versions.insert().values(
            name=row.name, version=row.version, spec=row.spec, origin=row.origin, created_at=row.created_at,
            created_by=row.created_by))
        return row

    @staticmethod
    def _put_routing(conn: Connection, routes: list[dict[str, Any]], *, actor: str, origin: Origin) -> None:
        now = datetime.now(UTC)
        current = conn.execute(select(registry_routing.c.version).where(
            registry_routing.c.id == _ROUTING_ROW)).scalar_one_or_none()
        if current is None:
            conn.execute(registry_routing.insert().values(id=_ROUTING_ROW, routes=routes, version=1, origin=origin,
                                                          updated_at=now, updated_by=actor))
        else:
            conn.execute(registry_routing.update().where(registry_routing.c.id == _ROUTING_ROW).values(
                routes=routes, version=current + 1, origin=origin, updated_at=now, updated_by=actor))

    @staticmethod
    def _bump(conn: Connection) -> None:
        updated = conn.execute(registry_revision.update().where(registry_revision.c.id == _REVISION_ROW).values(
            revision=registry_revision.c.revision + 1))
        if not updated.rowcount:
            conn.execute(registry_revision.insert().values(id=_REVISION_ROW, revision=1))
