"""Where a finding's value came from in the source, as a department can read it.

JSON-like payloads get a JSON path (``$.items[1].decisionDate``); tabular files get the data row
and the column header (``row 6, column 处罚决定日期``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

TABULAR_FORMATS = frozenset({"csv", "xlsx"})


def _row_numbering(meta: Mapping[str, Any]) -> Callable[[int], int]:
    """Data row number (from 1) of the record at ``index`` of this payload. A file published in
    chunks says where its rows sit: ``row_numbers`` (one per record, in order), or ``row_offset``
    (rows before the chunk); a single-row envelope may give its ``row``."""
    numbers = meta.get("row_numbers")
    if isinstance(numbers, list | tuple) and numbers:
        return lambda index: int(numbers[index]) if index < len(numbers) else index + 1
    offset = int(meta.get("row_offset", 0))
    single = int(meta.get("row", 0))
    return lambda index: single or offset + index + 1


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


Locator = Callable[[str, int, "str | None"], str]
"""(record path, record index, field source or None) -> location, for one payload."""


def locator(*, payload_format: str, meta: Mapping[str, Any]) -> Locator:
    """``locate`` with what one payload shares (format, meta) read once: ingest places every record."""
    if payload_format in TABULAR_FORMATS:
        row_of = _row_numbering(meta)

        def tabular(record_path: str, index: int, field_source: str | None) -> str:
            row = row_of(index)
            return f"row {row}, column {field_source}" if field_source else f"row {row}"

        return tabular
    base = str(meta.get("location", ""))
    prefix = base + ":" if base else ""

    def json_like(record_path: str, index: int, field_source: str | None) -> str:
        # join_json_path(record_path, field_source) spelt out: it runs once per record and finding
        out = prefix + "$"
        if record_path:
            out += record_path if record_path[0] == "[" else "." + record_path
        if field_source:
            out += field_source if field_source[0] == "[" else "." + field_source
        return out

    return json_like
