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
        # every field spelt out: dataclasses.replace costs several times more, once per finding
        return Finding(self.code, self.field, self.message_en, self.message_zh, self.severity, self.rule_id,
                       location)

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
