"""The few facts of standard 1.0 that rules need, read once from the packaged YAML files.

Rules need business keys (COM-005/006), the ``holder`` and ``validates_as`` attributes of the
``id_type`` code table (CPT-*, CRD-004, SOB-*, CMP-009), the ``channels`` of complaint fields
(CMP-006) and Chinese field labels for messages. Reading just these keeps the rules independent
of the standard model; each loader runs once per process.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml

_PACKAGE = "mapping"
_STANDARD_DIR = "standard/v1_0"


def _load(name: str) -> Any:
    text = resources.files(_PACKAGE).joinpath(f"{_STANDARD_DIR}/{name}").read_text(encoding="utf-8")
    return yaml.safe_load(text)


@lru_cache(maxsize=1)
def _standard() -> Mapping[str, Any]:
    loaded: Mapping[str, Any] = _load("unified-standard.yaml")
    return loaded


@lru_cache(maxsize=1)
def _id_type_codes() -> tuple[Mapping[str, Any], ...]:
    tables: Mapping[str, Any] = _load("code-tables.yaml")["tables"]
    return tuple(tables["id_type"]["codes"])


@lru_cache(maxsize=1)
def id_type_holders() -> Mapping[str, str]:
    """id_type code -> holder (``natural_person`` or ``organisation``)."""
    return {str(c["code"]): str(c["holder"]) for c in _id_type_codes() if "holder" in c}


@lru_cache(maxsize=1)
def id_type_validation() -> Mapping[str, str]:
    """id_type code -> identifier type its number must satisfy (``uscc``, ``ric``), where one is set."""
    return {str(c["code"]): str(c["validates_as"]) for c in _id_type_codes() if "validates_as" in c}


@lru_cache(maxsize=1)
def business_keys() -> Mapping[str, tuple[str, ...]]:
    kinds: Mapping[str, Any] = _standard()["kinds"]
    return {name: tuple(spec["business_key"]) for name, spec in kinds.items()}


@lru_cache(maxsize=1)
def complaint_channels() -> Mapping[str, frozenset[str]]:
    """complaint field -> the channels it is meant for (only fields that have a ``channels`` list)."""
    fields = _standard()["kinds"]["complaint"]["fields"]
    return {f["name"]: frozenset(str(c) for c in f["channels"]) for f in fields if "channels" in f}


@lru_cache(maxsize=1)
def _labels() -> Mapping[tuple[str, str], str]:
    std = _standard()
    common = {f["name"]: str(f["label_zh"]) for f in std["common"]["fields"]}
    labels: dict[tuple[str, str], str] = {("common", name): label for name, label in common.items()}
    for kind, spec in std["kinds"].items():
        labels.update({(kind, name): label for name, label in common.items()})
        labels.update({(kind, f["name"]): str(f["label_zh"]) for f in spec["fields"]})
    return labels


def field_label(kind: str, field: str) -> str:
    """Chinese label of a field of a kind, or of a common field under kind ``common``.

    The field name itself when unknown.
    """
    return _labels().get((kind, field), field)
