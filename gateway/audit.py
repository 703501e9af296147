"""The audit trail: every change to connectors, mappings, departments, keys and routing, and every
redrive, discard and resubmission, with who, when, and the state before and after.

``AuditTrail`` is what the rest of the gateway calls; the append-only, hash-chained store behind
it lives in ``gateway.stores.audit``. Values are JSON-like; secrets never go in (callers pass key
digests or fingerprints, not keys).
"""

from __future__ import annotations

from typing import Any, Protocol


class AuditTrail(Protocol):
    def record(self, actor: str, action: str, target: str, *, before: Any = None, after: Any = None) -> None:
        """Append one entry (blocking I/O: call it off the event loop). ``action`` is a stable
        dotted verb (``connector.create``, ``key.revoke``, ``deadletter.redrive``); ``target`` what
        it acted on (``connector:soap-inspections``)."""


class NoAudit:
    def record(self, actor: str, action: str, target: str, *, before: Any = None, after: Any = None) -> None:
        return None
