"""Header and row assembly shared by the CSV and XLSX codecs.

Rows are dicts ``{header: cell string}`` with every header present (empty cells are ``""``).
Blank rows inside the data are kept (as all-``""`` rows) so that record ``i`` stays data row
``i + 1`` of the file; blank rows at the end are dropped (editors and exporters leave them).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Iterator, Sequence

from gateway.errors import PayloadError

from .limits import DecodeLimits, check_rows


def normalise_header(cells: Sequence[str]) -> tuple[str, ...]:
    """NFKC-normalised, trimmed header names; trailing unnamed columns are dropped.

    No header at all, or an unnamed column before a named one -> ``HEADER_MISSING``;
    a name used twice -> ``MALFORMED``.
    """
    names = [unicodedata.normalize("NFKC", cell).strip() for cell in cells]
    while names and not names[-1]:
        names.pop()
    if not names:
        raise PayloadError(
            "HEADER_MISSING", "the header row is missing or empty（缺少表头行）", location="row 0"
        )
    seen: set[str] = set()
    for position, name in enumerate(names, start=1):
        if not name:
            raise PayloadError(
                "HEADER_MISSING", f"column {position} has no header name（第 {position} 列缺少表头）",
                location=f"row 0, column {position}",
            )
        if name in seen:
            raise PayloadError(
                "MALFORMED", f"header {name!r} appears twice（表头重复：{name}）",
                location=f"row 0, column {name}",
            )
        seen.add(name)
    return tuple(names)


def assemble_rows(
    header: tuple[str, ...], rows: Iterable[Sequence[str]], limits: DecodeLimits, *, pad_short: bool
) -> Iterator[dict[str, str]]:
    """Dicts keyed by ``header`` from cell sequences; see the module docstring for blank rows.

    Cells beyond the header must be empty (``MALFORMED`` otherwise, since their column has no
    name); a short row is padded when ``pad_short`` (XLSX omits trailing empty cells) and is
    ``MALFORMED`` otherwise (a CSV record with too few fields).
    """
    width = len(header)
    blank_pending = 0
    row_no = 0
    for cells in rows:
        if not any(cells):
            blank_pending += 1
            continue
        for _ in range(blank_pending):
            row_no += 1
            check_rows(row_no, limits)
            yield dict.fromkeys(header, "")
        blank_pending = 0
        row_no += 1
        check_rows(row_no, limits)
        yield _row_dict(header, width, cells, row_no, pad_short=pad_short)


def _row_dict(
    header: tuple[str, ...], width: int, cells: Sequence[str], row_no: int, *, pad_short: bool
) -> dict[str, str]:
    count = len(cells)
    if count == width:
        return dict(zip(header, cells, strict=True))
    if count > width:
        if any(cells[width:]):
            raise PayloadError(
                "MALFORMED",
                f"row {row_no} has values in {count - width} column(s) beyond the header"
                f"（第 {row_no} 行的数据超出表头列数）",
                location=f"row {row_no}",
            )
        return dict(zip(header, cells[:width], strict=True))
    if not pad_short:
        raise PayloadError(
            "MALFORMED",
            f"row {row_no} has {count} fields, the header has {width}（第 {row_no} 行字段数与表头不符）",
            location=f"row {row_no}",
        )
    return dict(zip(header, [*cells, *([""] * (width - count))], strict=True))
