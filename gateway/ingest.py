"""Ingest: an Envelope through its mapping and the standard, to one outcome per record.

Pure and synchronous: it decides, it does not store. ``gateway.publisher`` writes the outcomes
durably and only then lets the connector acknowledge its source.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol
from zoneinfo import ZoneInfo

from gateway.envelope import Envelope
from gateway.locations import locate, source_path_for
from mapping.compiler import CompiledMapping, MappedRecord
from mapping.findings import Finding
from mapping.record_id import business_key, record_id
from mapping.rules import RecordHistory
from mapping.standard import KindSpec, load_standard
from mapping.validation import Validator

Status = Literal["accepted", "rejected", "duplicate"]
SHANGHAI = ZoneInfo("Asia/Shanghai")


class RecordIndex(RecordHistory, Protocol):
    """What ingest asks of the accepted records: duplicates and the history cross-record rules read."""

    def is_duplicate(self, record_id: str) -> bool: ...


@dataclass(frozen=True, slots=True)
class RecordOutcome:
    status: Status
    index: int
    kind: str
    record: dict[str, Any]
    record_id: str | None
    business_key: tuple[str, ...]
    errors: tuple[Finding, ...]
    warnings: tuple[Finding, ...]
    location: str
    source: Any

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "record_id": self.record_id,
            "location": self.location,
            "record": self.record,
            "errors": [f.as_dict() for f in self.errors],
            "warnings": [f.as_dict() for f in self.warnings],
        }


def iso_shanghai(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(SHANGHAI).isoformat(timespec="seconds")


class Ingestor:
    """Maps and validates envelopes. One per process; validators are compiled once per version."""

    def __init__(self, *, uscc_exceptions: frozenset[str] = frozenset(),
                 today_fn: Callable[[], Any] | None = None) -> None:
        self._uscc_exceptions = uscc_exceptions
        self._today_fn = today_fn
        self._validators: dict[str, Validator] = {}

    def validator(self, standard_version: str) -> Validator:
        found = self._validators.get(standard_version)
        if found is None:
            found = Validator(load_standard(standard_version), uscc_exceptions=self._uscc_exceptions,
                              today_fn=self._today_fn)
            self._validators[standard_version] = found
        return found

    def evaluate(self, mapping: CompiledMapping, envelope: Envelope, index: RecordIndex | None) -> list[RecordOutcome]:
        meta = self._meta(envelope)
        kind = load_standard(mapping.standard_version).kinds[mapping.kind]
        validator = self.validator(mapping.standard_version)
        seen_in_batch: set[str] = set()
        outcomes = []
        for mapped in mapping.map(envelope.payload, meta, records_inline=envelope.records_inline):
            outcome = self._one(mapping, kind, validator, envelope, meta, mapped, index, seen_in_batch)
            outcomes.append(outcome)
        return outcomes

    def check_mapped(self, mapping: CompiledMapping, mapped: MappedRecord,
                     meta: Mapping[str, Any]) -> tuple[dict[str, Any], list[Finding]]:
        """Complete and validate one mapped record (for golden examples): the record and its findings."""
        kind = load_standard(mapping.standard_version).kinds[mapping.kind]
        full_meta = {"connector": "example", **meta}
        full_meta.setdefault("received_at", iso_shanghai(datetime.now(UTC)))
        record, findings, _ = self._complete(mapping, kind, self.validator(mapping.standard_version), mapped,
                                             full_meta, None)
        return record, findings

    @staticmethod
    def _complete(mapping: CompiledMapping, kind: KindSpec, validator: Validator, mapped: MappedRecord,
                  meta: Mapping[str, Any], index: RecordIndex | None,
                  ) -> tuple[dict[str, Any], list[Finding], tuple[str, ...]]:
        """Fill the gateway's fields, validate, and give the record its id."""
        record = mapped.record
        record.setdefault("record_kind", mapping.kind)
        record["received_at"] = meta["received_at"]
        record["connector"] = meta["connector"]
        record["standard_version"] = mapping.standard_version
        key = business_key(kind, record)
        record["record_id"] = record_id(kind.name, key, record)
        findings = list(mapped.findings)
        findings.extend(validator.validate(record, index))
        return record, findings, key

    @staticmethod
    def _meta(envelope: Envelope) -> dict[str, Any]:
        meta = dict(envelope.meta)
        meta.setdefault("received_at", iso_shanghai(envelope.received_at))
        meta["connector"] = envelope.connector
        if envelope.department is not None:
            meta.setdefault("department", envelope.department)
        return meta

    def _one(
        self,
        mapping: CompiledMapping,
        kind: KindSpec,
        validator: Validator,
        envelope: Envelope,
        meta: Mapping[str, Any],
        mapped: MappedRecord,
        index: RecordIndex | None,
        seen_in_batch: set[str],
    ) -> RecordOutcome:
        record, findings, key = self._complete(mapping, kind, validator, mapped, meta, index)
        rid = record["record_id"]

        def where(field: str | None) -> str:
            source = source_path_for(field, mapped.provenance) if field else None
            return locate(payload_format=mapping.format, meta=meta, record_path=mapped.source_path,
                          index=mapped.index, field_source=source)

        errors = tuple(f.at(where(f.field)) for f in findings if f.is_error)
        warnings = tuple(f.at(where(f.field)) for f in findings if not f.is_error)
        status: Status
        if errors:
            status = "rejected"
        elif rid in seen_in_batch or (index is not None and index.is_duplicate(rid)):
            status = "duplicate"
        else:
            status = "accepted"
            seen_in_batch.add(rid)
            if record.get("operation") == "i" and any(w.code == "RULE:COM-005" for w in warnings):
                record["operation"] = "u"  # standard COM-005: an insert for a key we hold is an update
        return RecordOutcome(status=status, index=mapped.index, kind=kind.name, record=record,
                             record_id=rid, business_key=key, errors=errors, warnings=warnings,
                             location=where(None), source=mapped.source)
