"""What the HTTP layer needs from the runtime, and nothing more."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from gateway.api.authz import PrincipalResolver
from gateway.audit import AuditTrail, NoAudit
from gateway.dead_letters import DeadLetterOps
from gateway.publisher import Publisher
from gateway.settings import ApiSettings, ConnectorSettings, DepartmentSettings


@dataclass(frozen=True, slots=True)
class ApiState:
    api: ApiSettings
    publisher: Publisher
    push_connectors: Mapping[str, ConnectorSettings]
    departments: tuple[DepartmentSettings, ...]
    metrics_exposition: Callable[[], bytes]
    readiness: Mapping[str, Callable[[], bool]] = field(default_factory=dict)
    push_plugins: Mapping[str, object] = field(default_factory=dict)
    """Push connector instances by id, for connectors that authenticate and answer their source
    themselves (e.g. the signed 12345 webhook)."""
    ops: DeadLetterOps | None = None
    audit: AuditTrail = field(default_factory=NoAudit)
    principals: PrincipalResolver | None = None
    """Resolves bearer tokens to principals (role, department); None: only config tokens, built
    from ``api`` and ``departments`` by ``create_app``."""
