"""Every cross-field rule of the unified standard 1.0, as code.

``RULES`` holds the record-scope rules by id, ``CROSS_RECORD_RULES`` those that need records
accepted earlier (``scope: cross_record``), and ``FIELD_LEVEL_RULES`` the ids the field validator
checks value by value instead. Together they cover every rule id of the standard, once.

A rule is called with a mapped record whose listed fields passed field validation; it yields a
``Violation`` per way the record breaks the statement (nothing when it holds). Fields may be
absent: a rule whose statement depends on an absent field holds, since REQUIRED covers absence.
Severity and applicability (which kinds, not on ``d``) come from the standard, not from here.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from mapping.rules import (
    behaviour,
    common,
    complaint,
    counterparty,
    credit,
    credit_subject,
    iot,
    objects,
    penalty,
)
from mapping.rules.violation import (
    AcceptedValues,
    CrossRecordRuleFn,
    RecordHistory,
    RuleFn,
    Violation,
)

__all__ = [
    "CROSS_RECORD_RULES",
    "FIELD_LEVEL_RULES",
    "RULES",
    "AcceptedValues",
    "CrossRecordRuleFn",
    "RecordHistory",
    "RuleFn",
    "Violation",
]

RULES: Mapping[str, RuleFn] = MappingProxyType(
    {
        **common.RULES,
        **counterparty.RULES,
        **behaviour.RULES,
        **penalty.RULES,
        **complaint.RULES,
        **credit_subject.RULES,
        **credit.RULES,
        **objects.RULES,
        **iot.RULES,
    }
)

CROSS_RECORD_RULES: Mapping[str, CrossRecordRuleFn] = MappingProxyType(
    {**common.CROSS_RECORD_RULES, **counterparty.CROSS_RECORD_RULES, **credit.CROSS_RECORD_RULES}
)

# CRD-001 is in RULES too: the field validator only skips the uscc identifier check for the
# placeholder in the 双公示 kinds; whether the placeholder is acceptable is decided by the rule.
FIELD_LEVEL_RULES: frozenset[str] = common.FIELD_LEVEL_RULES
