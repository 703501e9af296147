"""A standard record as a row of its ``ex_<kind>`` table (append-only: one row per version)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from adapters.data_centre.columns import Converter, FieldColumn, converter

CD_SOURCE = re.compile(r"[0-9]{6}\|[0-9A-Z]{18}")
OPERATIONS = frozenset({"i", "u", "d"})
_ABSENT: tuple[Any, ...] = (None, "", [])


class RowError(ValueError):
    """The record cannot be written: ``field`` is the standard field (or exchange column) at fault."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class RowBuilder:
    """Builds rows for one table; converters are compiled once."""

    def __init__(self, columns: tuple[FieldColumn, ...], *, province_code: str | None,
                 department_code: str | None) -> None:
        self._converters: list[tuple[str, Converter]] = [(c.name, converter(c)) for c in columns]
        self._province_code = province_code
        self._department_code = department_code

    def build(self, record: Mapping[str, Any], cd_time: datetime, cd_batch: str) -> dict[str, Any]:
        row = {
            "cd_id": _required(record, "record_id"),
            "cd_time": cd_time,
            "cd_source": self.cd_source(record),
            "cd_batch": cd_batch,
            "cd_operation": _operation(record),
            "record_unique_identity": _required(record, "source_record_id"),
        }
        for name, convert in self._converters:
            value = record.get(name)
            try:
                row[name] = None if value in _ABSENT else convert(value)
            except (ValueError, TypeError) as exc:
                raise RowError(name, str(exc)) from exc
        return row

    def cd_source(self, record: Mapping[str, Any]) -> str:
        """``<province>|<department>``: province = admin_division_code[0:2] + "0000" and department =
        provider_uscc, unless the target configures other codes."""
        province = self._province_code or str(record.get("admin_division_code") or "")[:2] + "0000"
        department = self._department_code or str(record.get("provider_uscc") or "")
        source = f"{province}|{department}"
        if not CD_SOURCE.fullmatch(source):
            raise RowError("provider_uscc", "cd_source must be <6 digits>|<18-character USCC>")
        return source


def _required(record: Mapping[str, Any], field: str) -> str:
    value = record.get(field)
    if not isinstance(value, str) or not value or len(value) > 100:
        raise RowError(field, "required, at most 100 characters")
    return value


def _operation(record: Mapping[str, Any]) -> str:
    operation = record.get("operation")
    if operation not in OPERATIONS:
        raise RowError("operation", "must be i, u or d")
    return str(operation)
