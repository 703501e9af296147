"""An in-memory record index, for dry runs (``sgw map``, golden examples) and unit tests."""

from __future__ import annotations

from gateway.ingest import RecordOutcome


class MemoryRecordIndex:
    def __init__(self) -> None:
        self._ids: set[str] = set()
        self._keys: set[tuple[str, tuple[str, ...]]] = set()

    def is_duplicate(self, record_id: str) -> bool:
        return record_id in self._ids

    def has_accepted(self, kind: str, business_key: tuple[str, ...]) -> bool:
        return (kind, business_key) in self._keys

    def has_inspection(self, implementing_org_uscc: str, check_action_no: str) -> bool:
        return ("inspection", (implementing_org_uscc, check_action_no)) in self._keys

    def remember(self, outcome: RecordOutcome) -> None:
        if outcome.status == "accepted" and outcome.record_id:
            self._ids.add(outcome.record_id)
            self._keys.add((outcome.kind, outcome.business_key))
