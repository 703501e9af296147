"""What the HTTP layer needs from the runtime, and nothing more."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field

from gateway.api.authz import PrincipalResolver
from gateway.audit import AuditTrail, NoAudit
from gateway.connector_admin import ConnectorAdmin
from gateway.dead_letters import DeadLetterOps
from gateway.departments import DepartmentDesk
from gateway.ops_view import OpsView
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
    desk: DepartmentDesk | None = None
    """Departments, keys, a department's own view and the audit log (None: those routes answer 503)."""
    ops_view: OpsView | None = None
    """Readiness with reasons, the dashboard's overview and data quality (None: those routes answer 503)."""
    paused_connectors: AbstractSet[str] = frozenset()
    """Ids of paused connectors (the runtime's live set): a push to one answers 503 CONNECTOR_PAUSED.
    ``push_connectors`` and ``push_plugins`` are live too: connectors come and go without a restart."""
    connector_admin: ConnectorAdmin | None = None
    """The connector and mapping registry (None: those routes answer 503)."""
