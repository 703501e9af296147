"""The accepted-record history one envelope needs, read in one go and kept up to date as the
envelope's records are decided.

Cross-record rules (COM-005/006, BEH-001, CPE-006) and duplicate detection ask the store about
every record; asking per record costs a query each. ``BatchView`` answers from what the store
returned for the whole envelope, and learns the records the envelope itself accepts, so a file
holding an insert and then an update of one key is judged like two files.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gateway.ingest import RecordOutcome

Key = tuple[str, tuple[str, ...]]
INSPECTION = "inspection"
FOLLOW_UP_KINDS = frozenset({"penalty", "coercion", "other_action"})


class BatchView:
    def __init__(self, known_ids: set[str], latest: dict[Key, tuple[str, Mapping[str, Any] | None]],
                 value_of: Callable[[str, tuple[str, ...], str], Any]) -> None:
        self._ids = known_ids
        self._latest = latest
        self._value_of = value_of  # the store's own lookup, for a value this view did not fetch

    def is_duplicate(self, record_id: str) -> bool:
        return record_id in self._ids

    def has_accepted(self, kind: str, business_key: tuple[str, ...]) -> bool:
        found = self._latest.get((kind, business_key))
        return found is not None and found[0] != "d"

    def has_inspection(self, implementing_org_uscc: str, check_action_no: str) -> bool:
        return self.has_accepted(INSPECTION, (implementing_org_uscc, check_action_no))

    def accepted_value(self, kind: str, business_key: tuple[str, ...], field: str) -> Any:
        found = self._latest.get((kind, business_key))
        if found is None or found[0] == "d":
            return None
        record = found[1]
        return record.get(field) if record is not None else self._value_of(kind, business_key, field)

    def remember(self, outcome: RecordOutcome) -> None:
        if outcome.status == "accepted" and outcome.record_id:
            self._ids.add(outcome.record_id)
            self._latest[(outcome.kind, outcome.business_key)] = (str(outcome.record.get("operation")), outcome.record)


def history_keys(kind: str, records: Collection[tuple[tuple[str, ...], Mapping[str, Any]]]) -> set[Key]:
    """The keys cross-record rules will ask about: each record's own, and for follow-up acts the
    inspection they refer to (BEH-001)."""
    keys: set[Key] = set()
    for key, record in records:
        keys.add((kind, key))
        if kind in FOLLOW_UP_KINDS:
            uscc, action = record.get("implementing_org_uscc"), record.get("check_action_no")
            if isinstance(uscc, str) and isinstance(action, str):
                keys.add((INSPECTION, (uscc, action)))
    return keys
