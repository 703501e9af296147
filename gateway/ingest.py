"""Ingest: an Envelope through its mapping and the standard, to one outcome per record.

Pure and synchronous: it decides, it does not store. ``gateway.publisher`` writes the outcomes
durably and only then lets the connector acknowledge its source.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any, Literal, Protocol
from zoneinfo import ZoneInfo

from gateway.envelope import Envelope, Refusal
from gateway.locations import Locator, locator, source_path_for
from gateway.record_view import history_keys
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


@dataclass(slots=True)
class Prepared:
    """A source record mapped, given its id and checked on its own (``Ingestor.prepare``): what
    ingest does without the store, so that it may run in another process (``gateway.map_pool``)."""

    mapped: MappedRecord
    key: tuple[str, ...]
    findings: list[Finding]           # ``Validator.check_record``'s, location None
    broken: frozenset[str] | None     # fields with an error before the record's rules ran


def _outcome_factory() -> Callable[..., RecordOutcome]:
    """``RecordOutcome(...)`` at half the cost: ingest builds one per record, and a frozen
    dataclass's ``__init__`` goes through ``object.__setattr__`` once per field; the slots' own
    descriptors set the same fields directly (spelt out: a loop over them costs as much again)."""
    (s_status, s_index, s_kind, s_record, s_record_id, s_business_key, s_errors, s_warnings,
     s_location, s_source) = (getattr(RecordOutcome, f.name).__set__ for f in fields(RecordOutcome))
    new = object.__new__

    def outcome(status: Status, index: int, kind: str, record: dict[str, Any], record_id: str | None,
                business_key: tuple[str, ...], errors: tuple[Finding, ...], warnings: tuple[Finding, ...],
                location: str, source: Any) -> RecordOutcome:
        made: RecordOutcome = new(RecordOutcome)
        s_status(made, status)
        s_index(made, index)
        s_kind(made, kind)
        s_record(made, record)
        s_record_id(made, record_id)
        s_business_key(made, business_key)
        s_errors(made, errors)
        s_warnings(made, warnings)
        s_location(made, location)
        s_source(made, source)
        return made

    return outcome


def iso_shanghai(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(SHANGHAI).isoformat(timespec="seconds")


class Ingestor:
    """Maps and validates envelopes. One per process; validators are compiled once per version."""

    def __init__(self, *, uscc_exceptions: frozenset[str] = frozenset(),
                 today_fn: Callable[[], Any] | None = None) -> None:
        self._new_outcome = _outcome_factory()
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

    def today(self) -> Any:
        """The day identifiers are checked against (None: today in Asia/Shanghai)."""
        return self._today_fn() if self._today_fn is not None else None

    def prepare(self, mapping: CompiledMapping, payload: Any, meta: Mapping[str, Any], *,
                records_inline: bool) -> list[Prepared]:
        """Map ``payload``, give each record its id and check it on its own (``meta``: ``meta_for``)."""
        kind = load_standard(mapping.standard_version).kinds[mapping.kind]
        check_record = self.validator(mapping.standard_version).check_record
        fields = mapping.record_fields  # with the gateway's own, all a record may hold: rules skip by them
        fill = self._prepare
        prepared = []
        for mapped in mapping.map(payload, meta, records_inline=records_inline):
            key = fill(mapping, kind, mapped, meta)
            findings, broken = check_record(mapped.record, fields)
            prepared.append(Prepared(mapped, key, findings, broken))
        return prepared

    def evaluate(self, mapping: CompiledMapping, envelope: Envelope, index: RecordIndex | None,
                 prepared: list[Prepared] | None = None) -> list[RecordOutcome]:
        """Each record's outcome; ``prepared``: ``prepare``'s result for this envelope, when it was
        made elsewhere (its cross-record rules and duplicates are judged here, against ``index``)."""
        if envelope.refused:
            return [self._refused(mapping, envelope, i, r) for i, r in enumerate(envelope.refused)]
        meta = self.meta_for(envelope)
        kind = load_standard(mapping.standard_version).kinds[mapping.kind]
        validator = self.validator(mapping.standard_version)
        place = locator(payload_format=mapping.format, meta=meta)
        if prepared is None:
            prepared = self.prepare(mapping, envelope.payload, meta, records_inline=envelope.records_inline)
        view = self._view(index, kind.name, prepared)
        seen_in_batch: set[str] = set()
        outcomes = []
        for item in prepared:
            outcome = self._one(kind, validator, item, view, seen_in_batch, place)
            if view is not index and view is not None:
                view.remember(outcome)
            outcomes.append(outcome)
        return outcomes

    def _refused(self, mapping: CompiledMapping, envelope: Envelope, index: int, refused: Refusal) -> RecordOutcome:
        """A refusal rejected, with what arrived as its raw payload (bytes are kept as base64)."""
        where = refused.location or str(envelope.meta.get("location") or envelope.meta.get("topic") or "$")
        finding = Finding(code=refused.code, field="$", severity="error", location=where,
                          message_zh=f"报文无法受理（{refused.code}）：{refused.message}",
                          message_en=f"the message was refused ({refused.code}): {refused.message}")
        return self._new_outcome("rejected", index, mapping.kind, {}, None, (), (finding,), (), where, refused.raw)

    @staticmethod
    def _view(index: RecordIndex | None, kind: str, prepared: list[Prepared]) -> Any:
        """One read of the history the envelope needs, when the index can give it (the SQL store)."""
        snapshot = getattr(index, "snapshot", None)
        if snapshot is None or not prepared:
            return index
        ids = [p.mapped.record["record_id"] for p in prepared]
        return snapshot(ids, history_keys(kind, [(p.key, p.mapped.record) for p in prepared]))

    def check_mapped(self, mapping: CompiledMapping, mapped: MappedRecord,
                     meta: Mapping[str, Any]) -> tuple[dict[str, Any], list[Finding]]:
        """Complete and validate one mapped record (for golden examples): the record and its findings."""
        kind = load_standard(mapping.standard_version).kinds[mapping.kind]
        full_meta = {"connector": "example", **meta}
        full_meta.setdefault("received_at", iso_shanghai(datetime.now(UTC)))
        self._prepare(mapping, kind, mapped, full_meta)
        found = self.validator(mapping.standard_version).validate(mapped.record, None)
        return mapped.record, [*mapped.findings, *found]

    @staticmethod
    def _prepare(mapping: CompiledMapping, kind: KindSpec, mapped: MappedRecord,
                 meta: Mapping[str, Any]) -> tuple[str, ...]:
        """Give the record its id and fill the gateway's fields; the business key."""
        record = mapped.record
        record.setdefault("record_kind", mapping.kind)
        # The id leaves the gateway's fields out: computed before they are set, it hashes the
        # mapped record as it is instead of a copy without them.
        key = business_key(kind, record)
        rid = record_id(kind.name, key, record)
        record["received_at"] = meta["received_at"]
        record["connector"] = meta["connector"]
        record["standard_version"] = mapping.standard_version
        record["record_id"] = rid
        return key

    @staticmethod
    def meta_for(envelope: Envelope) -> dict[str, Any]:
        """The envelope's meta as its mapping sees it (with the gateway's received_at and connector)."""
        meta = dict(envelope.meta)
        meta.setdefault("received_at", iso_shanghai(envelope.received_at))
        meta["connector"] = envelope.connector
        if envelope.department is not None:
            meta.setdefault("department", envelope.department)
        return meta

    def _one(
        self,
        kind: KindSpec,
        validator: Validator,
        item: Prepared,
        index: RecordIndex | None,
        seen_in_batch: set[str],
        place: Locator,
    ) -> RecordOutcome:
        mapped, key = item.mapped, item.key
        record = mapped.record
        rid = record["record_id"]
        found = item.findings
        if index is not None:
            validator.check_history(record, index, found, item.broken)
        findings = [*mapped.findings, *found] if mapped.findings else found
        errors: tuple[Finding, ...] = ()
        warnings: tuple[Finding, ...] = ()
        if findings:
            errors, warnings = _located(findings, mapped, place)
        status: Status
        if errors:
            status = "rejected"
        elif rid in seen_in_batch or (index is not None and index.is_duplicate(rid)):
            status = "duplicate"
        else:
            status = "accepted"
            seen_in_batch.add(rid)
            if warnings and record.get("operation") == "i":
                for warning in warnings:  # a loop: a generator per record costs as much again
                    if warning.code == "RULE:COM-005":
                        record["operation"] = "u"  # standard COM-005: an insert for a key we hold is an update
                        break
        return self._new_outcome(status, mapped.index, kind.name, record, rid, key, errors, warnings,
                                 place(mapped.source_path, mapped.index, None), mapped.source)


def _located(findings: list[Finding], mapped: MappedRecord,
             place: Locator) -> tuple[tuple[Finding, ...], tuple[Finding, ...]]:
    """(errors, warnings), each placed where its field's value came from in the source."""
    if len(findings) == 1:  # the usual case when there is any (BEH-001's warning): no lists
        only = (_placed(findings[0], mapped, place),)
        return (only, ()) if findings[0].is_error else ((), only)
    errors: list[Finding] = []
    warnings: list[Finding] = []
    for finding in findings:
        (errors if finding.is_error else warnings).append(_placed(finding, mapped, place))
    return tuple(errors), tuple(warnings)


def _placed(finding: Finding, mapped: MappedRecord, place: Locator) -> Finding:
    source = source_path_for(finding.field, mapped.provenance) if finding.field else None
    return finding.at(place(mapped.source_path, mapped.index, source))
