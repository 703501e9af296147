"""Findings: what validation says about a record, in the standard's vocabulary.

A finding has a stable English ``code`` (``REQUIRED``, ``CODE_UNKNOWN``, ``RULE:PEN-003``...),
the standard ``field`` path (``factors[2].code``), a severity, and messages in Chinese and
English. Messages never contain personal information: the validator leaves values out of the
messages of PII fields. ``location`` says where the value came from in the source (a JSON path,
or a file row and column); ingest fills it from the mapping's field provenance.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True, slots=True)
class Finding:
    code: str
    field: str
    message_en: str
    message_zh: str
    severity: Severity = "error"
    rule_id: str | None = None
    location: str | None = None

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def at(self, location: str | None) -> Finding:
        # The slots' own setters, spelt out: the frozen __init__ goes through object.__setattr__
        # once per field, and ingest places nearly every finding it reports.
        placed: Finding = _new(Finding)
        _set_code(placed, self.code)
        _set_field(placed, self.field)
        _set_message_en(placed, self.message_en)
        _set_message_zh(placed, self.message_zh)
        _set_severity(placed, self.severity)
        _set_rule_id(placed, self.rule_id)
        _set_location(placed, location)
        return placed

    def as_dict(self) -> dict[str, str | None]:
        out: dict[str, str | None] = {
            "code": self.code,
            "field": self.field,
            "severity": self.severity,
            "location": self.location,
            "message_zh": self.message_zh,
            "message_en": self.message_en,
        }
        if self.rule_id:
            out["rule_id"] = self.rule_id
        return out


_new = object.__new__
(_set_code, _set_field, _set_message_en, _set_message_zh, _set_severity, _set_rule_id, _set_location) = (
    Finding.__dict__[name].__set__
    for name in ("code", "field", "message_en", "message_zh", "severity", "rule_id", "location"))
