"""The registry's use cases, as the admin API offers them (in the manner of Kafka Connect's REST API).

Every change is validated before it is saved (each problem with its path), saved in the registry,
written to the audit trail (before and after, secrets masked) and then applied to the running
gateway at once (``LiveConnectors.reconcile``). Blocking store calls run in worker threads.
"""

from __future__ import annotations

import asyncio
import difflib
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from gateway.audit import AuditTrail, NoAudit
from gateway.connector_checks import connector_problems, problem_of_line, pydantic_problems
from gateway.envelope import Envelope
from gateway.errors import ConfigError, MappingError
from gateway.ingest import Ingestor
from gateway.live_connectors import LiveConnectors
from gateway.mapping_versions import checked_mapping
from gateway.memory_index import MemoryRecordIndex
from gateway.registry import connector_registry
from gateway.routing_table import route_problems
from gateway.secrets_mask import mask_connector, restore_masked
from gateway.settings import ConnectorSettings, RouteSettings
from gateway.stores.registry import ConnectorRow, MappingVersion, SqlRegistry

DEFAULT_VARIANT = "default"
VALIDATE_ID = "validate-only"


class AdminProblem(Exception):
    """A refused request: an HTTP status, a stable code, messages, and the problems by path."""

    def __init__(self, status: int, code: str, message_zh: str, message_en: str,
                 errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message_en)
        self.status, self.code, self.message_zh, self.message_en = status, code, message_zh, message_en
        self.errors = errors or []


def _not_found(what: str, name: str) -> AdminProblem:
    zh = {"connector": "连接器", "mapping": "映射", "version": "映射版本"}[what]
    return AdminProblem(404, f"{what.upper()}_NOT_FOUND", f"{zh} {name} 不存在", f"no {what} {name!r}")


def _iso(moment: datetime) -> str:
    return moment.isoformat()


def _version_view(v: MappingVersion, *, with_spec: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"name": v.name, "version": v.version, "origin": v.origin,
                           "created_at": _iso(v.created_at), "created_by": v.created_by}
    if with_spec:
        out["spec"] = v.spec
    return out


class ConnectorAdmin:
    def __init__(self, registry: SqlRegistry, live: LiveConnectors, *, mappings_dir: Path, ingestor: Ingestor,
                 department_exists: Callable[[str], bool] | None = None, audit: AuditTrail | None = None,
                 adapters: tuple[str, ...] = ()) -> None:
        self._registry = registry
        self._live = live
        self._folder = mappings_dir
        self._ingestor = ingestor
        self._department_exists = department_exists
        self._audit = audit or NoAudit()
        self._adapters = adapters

    async def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return await asyncio.to_thread(fn, *args, **kwargs)

    async def _audited(self, actor: str, action: str, target: str, before: Any, after: Any) -> None:
        await asyncio.to_thread(self._audit.record, actor, action, target, before=before, after=after)

    # -- connector types --

    def plugins(self) -> list[dict[str, Any]]:
        registry = connector_registry()
        out = []
        for name in registry.names():
            try:
                plugin = registry.get(name)
            except (ConfigError, ImportError) as exc:  # a third-party plugin whose library is missing
                out.append({"type": name, "available": False, "error": str(exc)})
                continue
            out.append({"type": name, "available": True,
                        "class": f"{plugin.factory.__module__}.{plugin.factory.__qualname__}",
                        "pushes_over_http": bool(getattr(plugin.factory, "pushes_over_http", False)),
                        "connection_test": callable(getattr(plugin.factory, "probe", None)),
                        "options_schema": plugin.config_model.model_json_schema()})
        return out

    # -- validation --

    async def validate(self, config: Mapping[str, Any], *, type_name: str | None = None) -> list[dict[str, str]]:
        """Every problem of a connector's settings, each with its path (nothing is saved): the
        settings' shape, the type, the type's options, the mappings and the department."""
        body = dict(config)
        body.setdefault("id", VALIDATE_ID)
        problems: list[dict[str, str]] = []
        if type_name is not None and body.setdefault("type", type_name) != type_name:
            problems.append({"path": "type", "message": f"the address names type {type_name!r}"})
        problems.extend(await self._call(connector_problems, body, list(self._live.catalog),
                                         self._department_exists))
        return problems

    async def _checked(self, config: Mapping[str, Any]) -> ConnectorSettings:
        problems = await self.validate(config)
        if problems:
            raise AdminProblem(422, "CONNECTOR_INVALID", "连接器配置有误", "invalid connector settings", problems)
        return ConnectorSettings.model_validate(config)

    # -- connectors --

    def _view(self, row: ConnectorRow) -> dict[str, Any]:
        return {"id": row.id, "type": row.config.get("type"), "department": row.config.get("department"),
                "enabled": row.config.get("enabled", True), "paused": row.paused, "version": row.version,
                "origin": row.origin, "updated_at": _iso(row.updated_at), "updated_by": row.updated_by,
                "config": mask_connector(row.config), "status": self._live.status(row.id)}

    async def _row(self, cid: str) -> ConnectorRow:
        row: ConnectorRow | None = await self._call(self._registry.connector, cid)
        if row is None:
            raise _not_found("connector", cid)
        return row

    async def connectors(self) -> list[dict[str, Any]]:
        rows: list[ConnectorRow] = await self._call(self._registry.connectors)
        return [self._view(r) for r in rows]

    async def get(self, cid: str) -> dict[str, Any]:
        return self._view(await self._row(cid))

    async def create(self, config: Mapping[str, Any], *, actor: str) -> dict[str, Any]:
        cid = config.get("id")
        if isinstance(cid, str) and await self._call(self._registry.connector, cid) is not None:
            raise AdminProblem(409, "CONNECTOR_EXISTS", f"连接器 {cid} 已存在", f"connector {cid!r} exists")
        settings = await self._checked(config)
        saved = await self._save(settings, actor=actor, before=None)
        return self._view(saved)

    async def put(self, cid: str, config: Mapping[str, Any], *, actor: str) -> tuple[dict[str, Any], bool]:
        """Create or replace a connector's settings (Kafka's ``PUT /connectors/{name}/config``)."""
        body = dict(config)
        if body.setdefault("id", cid) != cid:
            raise AdminProblem(422, "CONNECTOR_INVALID", "连接器配置有误", "invalid connector settings",
                               [{"path": "id", "message": f"the address names connector {cid!r}"}])
        before: ConnectorRow | None = await self._call(self._registry.connector, cid)
        if before is not None and "options" in body:  # a masked secret sent back as shown: "unchanged"
            body["options"] = restore_masked(body.get("options"), before.config.get("options"))
        settings = await self._checked(body)
        if before is not None and settings.model_dump(mode="json") == before.config:
            return self._view(before), False
        saved = await self._save(settings, actor=actor, before=before)
        return self._view(saved), before is None

    async def _save(self, settings: ConnectorSettings, *, actor: str, before: ConnectorRow | None) -> ConnectorRow:
        config = settings.model_dump(mode="json")
        saved: ConnectorRow = await self._call(self._registry.put_connector, config, actor=actor, origin="api")
        await self._audited(actor, "connector.create" if before is None else "connector.update",
                            f"connector:{settings.id}", mask_connector(before.config) if before else None,
                            mask_connector(config))
        await self._live.reconcile()
        return saved

    async def delete(self, cid: str, *, actor: str) -> None:
        before: ConnectorRow | None = await self._call(self._registry.delete_connector, cid, actor=actor, origin="api")
        if before is None:
            raise _not_found("connector", cid)
        await self._audited(actor, "connector.delete", f"connector:{cid}", mask_connector(before.config), None)
        await self._live.reconcile()

    async def status(self, cid: str) -> dict[str, Any]:
        row = await self._row(cid)
        return {**self._live.status(cid), "version": row.version, "enabled": row.config.get("enabled", True)}

    async def set_paused(self, cid: str, paused: bool, *, actor: str) -> dict[str, Any]:
        before = await self._row(cid)
        after: ConnectorRow | None = await self._call(self._registry.set_paused, cid, paused, actor=actor)
        if after is None:
            raise _not_found("connector", cid)
        if before.paused != paused:
            await self._audited(actor, "connector.pause" if paused else "connector.resume", f"connector:{cid}",
                                {"paused": before.paused}, {"paused": paused})
        await self._live.reconcile()
        return await self.status(cid)

    async def restart(self, cid: str, *, actor: str) -> dict[str, Any]:
        await self._row(cid)
        await self._live.restart(cid)
        await self._audited(actor, "connector.restart", f"connector:{cid}", None, None)
        return await self.status(cid)

    async def _settings(self, cid: str) -> ConnectorSettings:
        running = self._live.settings.get(cid)
        if running is not None:
            return running
        return ConnectorSettings.model_validate((await self._row(cid)).config)

    async def test(self, cid: str) -> dict[str, Any]:
        settings = await self._settings(cid)
        try:
            return await self._live.probe(settings)
        except ConfigError as exc:
            raise AdminProblem(422, "CONNECTOR_INVALID", "连接器配置有误", "invalid connector settings",
                               [problem_of_line(p) for p in exc.problems]) from exc

    async def dry_run(self, cid: str, payload: Any, *, meta: Mapping[str, Any], variant: str | None,
                      records_inline: bool | None) -> dict[str, Any]:
        """The sample payload through the connector's mapping and validation; nothing is written."""
        settings = await self._settings(cid)
        try:
            variants = self._live.mappings_of(settings)
        except ConfigError as exc:
            raise AdminProblem(422, "CONNECTOR_INVALID", "连接器配置有误", "invalid connector settings",
                               [problem_of_line(p) for p in exc.problems]) from exc
        chosen = variant or DEFAULT_VARIANT
        mapping = variants.get(chosen) or (variants.get(DEFAULT_VARIANT) if len(variants) == 1 else None)
        if mapping is None:
            hint = difflib.get_close_matches(chosen, variants, n=1)
            raise AdminProblem(422, "VARIANT_UNKNOWN", f"连接器没有变体 {chosen} 的映射",
                               f"the connector has no mapping for variant {chosen!r}"
                               + (f"; did you mean {hint[0]!r}?" if hint else ""))
        if records_inline is None:
            records_inline = cid in self._live.push_connectors or settings.type == "http_push"
        envelope = Envelope(connector=cid, payload=payload, received_at=datetime.now(UTC),
                            department=settings.department,
                            meta={**settings.meta, **({"department": settings.department} if settings.department
                                                      else {}), **meta, "variant": chosen},
                            records_inline=records_inline)
        try:
            outcomes = await asyncio.to_thread(self._ingestor.evaluate, mapping, envelope, MemoryRecordIndex())
        except MappingError as exc:
            raise AdminProblem(422, "PAYLOAD_UNMAPPABLE", f"样例数据无法映射：{exc}",
                               f"the payload cannot be mapped: {exc}",
                               [{"path": "payload", "message": str(exc)}]) from exc
        counts = {"accepted": 0, "rejected": 0, "duplicate": 0}
        for outcome in outcomes:
            counts[outcome.status] += 1
        return {"connector": cid, "mapping": mapping.name, "mapping_version": self._live.mapping_versions.get(
            mapping.name), "counts": counts, "outcomes": [{"index": o.index, **o.as_dict()} for o in outcomes]}

    # -- mappings --

    async def mappings(self) -> list[dict[str, Any]]:
        current: list[MappingVersion] = await self._call(self._registry.current_mappings)
        out = []
        for v in current:
            compiled = self._live.catalog.get(v.name)
            out.append({**_version_view(v, with_spec=False), "kind": compiled.kind if compiled else None,
                        "source": compiled.source if compiled else None,
                        "spec_version": compiled.version if compiled else None})
        return out

    async def mapping(self, name: str) -> dict[str, Any]:
        versions: list[MappingVersion] = await self._call(self._registry.mapping_versions, name)
        if not versions:
            raise _not_found("mapping", name)
        return {"name": name, "current": _version_view(versions[-1], with_spec=True),
                "versions": [_version_view(v, with_spec=False) for v in versions]}

    async def mapping_version(self, name: str, version: int) -> dict[str, Any]:
        found: MappingVersion | None = await self._call(self._registry.mapping_version, name, version)
        if found is None:
            raise _not_found("version", f"{name}@v{version}")
        return _version_view(found, with_spec=True)

    async def put_mapping(self, name: str, spec: str, *, actor: str) -> tuple[dict[str, Any], bool]:
        """A new current version, accepted only when it compiles and its golden examples hold."""
        versions: list[MappingVersion] = await self._call(self._registry.mapping_versions, name)
        if versions and versions[-1].spec == spec:
            return _version_view(versions[-1], with_spec=False), False
        next_version = versions[-1].version + 1 if versions else 1
        try:
            await asyncio.to_thread(checked_mapping, spec, self._folder, self._ingestor, name=name,
                                    version=next_version)
        except ConfigError as exc:
            raise AdminProblem(422, "MAPPING_INVALID", "映射未通过校验（编译或黄金样例）",
                               "the mapping does not compile or its golden examples fail",
                               [{"message": p} for p in exc.problems]) from exc
        saved: MappingVersion = await self._call(self._registry.add_mapping_version, name, spec, actor=actor,
                                                 origin="api")
        await self._audited(actor, "mapping.update" if versions else "mapping.create", f"mapping:{name}",
                            {"version": versions[-1].version} if versions else None,
                            {"version": saved.version, "spec": spec})
        await self._live.reconcile()
        return _version_view(saved, with_spec=False), True

    # -- routing --

    async def routing(self) -> dict[str, Any]:
        row = await self._call(self._registry.routing)
        return {"routes": row.routes if row else [], "version": row.version if row else 0,
                "updated_by": row.updated_by if row else None}

    async def put_routing(self, routes: list[dict[str, Any]], *, actor: str) -> dict[str, Any]:
        problems: list[dict[str, str]] = []
        parsed: list[RouteSettings] = []
        for i, route in enumerate(routes):
            try:
                parsed.append(RouteSettings.model_validate(route))
            except ValidationError as exc:
                problems.extend(pydantic_problems(exc, f"routes[{i}]"))
        problems.extend(problem_of_line("routes" + p.removeprefix("routing"))
                        for p in route_problems(parsed, self._adapters))
        if problems:
            raise AdminProblem(422, "ROUTING_INVALID", "路由配置有误", "invalid routing", problems)
        before = await self._call(self._registry.routing)
        after = [r.model_dump(mode="json") for r in parsed]
        await self._call(self._registry.put_routing, after, actor=actor, origin="api")
        await self._audited(actor, "routing.update", "routing", before.routes if before else None, after)
        await self._live.reconcile()
        return await self.routing()
