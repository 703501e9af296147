"""The few facts of the standard that rules need, taken from the one standard model.

Rules need business keys (COM-005/006), the ``holder`` and ``validates_as`` attributes of the
``id_type`` code table (CPT-*, CRD-004, SOB-*, CMP-009), the ``channels`` of complaint fields
(CMP-006) and Chinese field labels for messages. Each is derived once per process from
``mapping.standard.load_standard`` (rules are written against standard 1.0).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache

from mapping.standard import Standard, load_standard

RULES_STANDARD_VERSION = "1.0"


def _standard() -> Standard:
    return load_standard(RULES_STANDARD_VERSION)


@lru_cache(maxsize=1)
def id_type_holders() -> Mapping[str, str]:
    """id_type code -> holder (``natural_person`` or ``organisation``)."""
    codes = _standard().code_tables["id_type"].codes
    return {code: entry.holder for code, entry in codes.items() if entry.holder}


@lru_cache(maxsize=1)
def id_type_validation() -> Mapping[str, str]:
    """id_type code -> identifier type its number must satisfy (``uscc``, ``ric``), where one is set."""
    codes = _standard().code_tables["id_type"].codes
    return {code: entry.validates_as for code, entry in codes.items() if entry.validates_as}


@lru_cache(maxsize=1)
def business_keys() -> Mapping[str, tuple[str, ...]]:
    return {name: kind.business_key for name, kind in _standard().kinds.items()}


@lru_cache(maxsize=1)
def complaint_channels() -> Mapping[str, frozenset[str]]:
    """complaint field -> the channels it is meant for (only fields that have a ``channels`` list)."""
    fields = _standard().kinds["complaint"].fields
    return {name: frozenset(f.channels) for name, f in fields.items() if f.channels}


@lru_cache(maxsize=1)
def _labels() -> Mapping[tuple[str, str], str]:
    std = _standard()
    labels: dict[tuple[str, str], str] = {("common", n): f.label_zh for n, f in std.common_fields.items()}
    for kind_name, kind in std.kinds.items():
        labels.update({(kind_name, n): f.label_zh for n, f in kind.fields.items()})
    return labels


def field_label(kind: str, field: str) -> str:
    """Chinese label of a field of a kind, or of a common field under kind ``common``.

    The field name itself when unknown.
    """
    return _labels().get((kind, field), field)
