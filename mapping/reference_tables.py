"""Reference tables for ``ref:`` sources: small CSV registries beside the mappings.

Read once at load: UTF-8 (with or without BOM) or else GB18030 (a superset of GBK); headers and
keys NFKC-normalised and trimmed; cells trimmed. A key that is not in the table gives an absent
value at run time.
"""

from __future__ import annotations

import csv
import io
import unicodedata
from dataclasses import dataclass
from pathlib import Path


class ReferenceTableError(ValueError):
    """A reference table that cannot be used; the message says why."""


def normalise_key(text: str) -> str:
    return unicodedata.normalize("NFKC", text).strip()


@dataclass(frozen=True, slots=True)
class ReferenceTable:
    path: Path
    columns: tuple[str, ...]
    rows: dict[str, dict[str, str]]       # normalised key -> row (column -> trimmed cell)


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("gb18030")


def read_reference(path: Path, key_column: str) -> ReferenceTable:
    """Read a CSV reference table keyed by ``key_column``; raises ReferenceTableError."""
    try:
        text = _decode(path.read_bytes())
    except OSError as exc:
        raise ReferenceTableError(f"cannot read {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ReferenceTableError(f"{path} is neither UTF-8 nor GBK/GB18030") from exc
    reader = csv.reader(io.StringIO(text, newline=""))
    header = [normalise_key(h) for h in next(reader, [])]
    key = normalise_key(key_column)
    if key not in header:
        raise ReferenceTableError(f"{path.name} has no column {key_column!r} (columns: {', '.join(header)})")
    key_at = header.index(key)
    rows: dict[str, dict[str, str]] = {}
    for line, cells in enumerate(reader, start=2):
        if not any(c.strip() for c in cells):
            continue
        row = {h: (cells[i].strip() if i < len(cells) else "") for i, h in enumerate(header)}
        row_key = normalise_key(cells[key_at]) if key_at < len(cells) else ""
        if not row_key:
            raise ReferenceTableError(f"{path.name} line {line}: empty key {key_column!r}")
        if row_key in rows:
            raise ReferenceTableError(f"{path.name} line {line}: duplicate key {row_key!r}")
        rows[row_key] = row
    return ReferenceTable(path, tuple(header), rows)
