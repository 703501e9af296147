"""What a cross-field rule returns, and what a cross-record rule may ask about earlier records.

A rule reads one mapped record (a plain dict) and yields a ``Violation`` for each way the record
breaks the rule's statement; nothing when the rule holds. The validator turns a violation into a
``RULE:<id>`` finding with the rule's severity, so a violation carries no severity of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class Violation:
    """One way a record breaks a rule.

    ``field`` is the standard field path to report the finding on (``factors[2].code``).
    The details never contain personal data; dates, codes and amounts may appear.
    """

    field: str
    detail_en: str
    detail_zh: str


Result = tuple[Violation, ...]
"""What the rules of this package return (any iterable would do for callers)."""
HOLDS: Result = ()


def violations(found: Iterable[Violation | None]) -> Result:
    """The violations among optional results."""
    return tuple(v for v in found if v is not None)


RuleFn = Callable[[Mapping[str, Any]], Iterable[Violation]]

_FIRES_WITH = "fires_with"


def fires_only_with(rule: RuleFn, *field_sets: Iterable[str]) -> RuleFn:
    """Declare that ``rule`` holds for any record without one of the fields of each of ``field_sets``
    (it can break only when all the fields of one set are there), and return it. A validator then
    skips it for the records of a mapping that never gives them (a date pair it has no column for)."""
    setattr(rule, _FIRES_WITH, tuple(frozenset(fields) for fields in field_sets))
    return rule


def fires_with(rule: RuleFn) -> tuple[frozenset[str], ...] | None:
    """What ``fires_only_with`` declared of ``rule`` (None: nothing, it may break on any record)."""
    found: tuple[frozenset[str], ...] | None = getattr(rule, _FIRES_WITH, None)
    return found


class RecordHistory(Protocol):
    """What the gateway's store can say about records accepted earlier."""

    def has_accepted(self, kind: str, business_key: tuple[str, ...]) -> bool: ...

    def has_inspection(self, implementing_org_uscc: str, check_action_no: str) -> bool: ...


class AcceptedValues(Protocol):
    """Optional extension of a ``RecordHistory``: one field of an accepted record.

    Only CPE-006 needs it (it compares a fine with the penalty's): ``None`` when no such record or
    field. A history without this method makes CPE-006 hold, since nothing can be compared.
    """

    def accepted_value(self, kind: str, business_key: tuple[str, ...], field: str) -> Any: ...


CrossRecordRuleFn = Callable[[Mapping[str, Any], RecordHistory], Iterable[Violation]]
