"""Where a finding's value came from in the source, as a department can read it.

JSON-like payloads get a JSON path (``$.items[1].decisionDate``); tabular files get the data row
and the column header (``row 6, column 处罚决定日期``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

TABULAR_FORMATS = frozenset({"csv", "xlsx"})


def source_path_for(field: str, provenance: Mapping[str, str]) -> str | None:
    """The source path of a standard field path, falling back to its enclosing field."""
    candidate = field
    while candidate:
        found = provenance.get(candidate)
        if found is not None:
            return found
        cut = max(candidate.rfind("."), candidate.rfind("["))
        candidate = candidate[:cut] if cut > 0 else ""
    return None


def join_json_path(*parts: str) -> str:
    out = "$"
    for part in parts:
        if not part:
            continue
        out += part if part.startswith("[") else "." + part
    return out


def locate(
    *,
    payload_format: str,
    meta: Mapping[str, Any],
    record_path: str,
    index: int,
    field_source: str | None,
) -> str:
    """Describe where a value sits: row and column for files, a JSON path otherwise."""
    if payload_format in TABULAR_FORMATS:
        row = int(meta.get("row", 0)) or index + 1
        return f"row {row}, column {field_source}" if field_source else f"row {row}"
    base = str(meta.get("location", ""))
    path = join_json_path(record_path, field_source or "")
    return f"{base}:{path}" if base else path


Locator = Callable[[str, int, "str | None"], str]
"""(record path, record index, field source or None) -> location, for one payload."""


def locator(*, payload_format: str, meta: Mapping[str, Any]) -> Locator:
    """``locate`` with what one payload shares (format, meta) read once: ingest places every record."""
    if payload_format in TABULAR_FORMATS:
        meta_row = int(meta.get("row", 0))

        def tabular(record_path: str, index: int, field_source: str | None) -> str:
            row = meta_row or index + 1
            return f"row {row}, column {field_source}" if field_source else f"row {row}"

        return tabular
    base = str(meta.get("location", ""))
    prefix = base + ":" if base else ""

    def json_like(record_path: str, index: int, field_source: str | None) -> str:
        return prefix + join_json_path(record_path, field_source or "")

    return json_like
