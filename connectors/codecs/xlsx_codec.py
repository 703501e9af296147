"""XLSX -> rows ``{header: cell string}`` of the first (or a named) sheet, header in row 1, streamed.

The archive is checked (``zip_guard``) before openpyxl sees it; openpyxl reads it in
``read_only`` mode, row by row. Cell values become strings (``cell_text``), so a mapping sees
the same shapes as for CSV.
"""

from __future__ import annotations

import io
import itertools
import math
import os
import warnings
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

from defusedxml import DefusedXmlException

from gateway.errors import PayloadError

from .limits import DEFAULT_LIMITS, DecodeLimits, check_size
from .tabular import assemble_rows, normalise_header
from .zip_guard import check_archive

Source = str | os.PathLike[str] | IO[bytes]
_BATCH_ROWS = 256
# Built-in number formats the standard leaves to the locale: in zh-CN Excel and WPS, 27-31, 36 and
# 50-54, 57, 58 are dates (31 is the long date "yyyy年m月d日") and 32-35, 55, 56 times. A workbook
# names only their id, and openpyxl knows no code for them, so it would give the serial number.
CJK_DATE_FORMAT_IDS = frozenset({*range(27, 37), *range(50, 59)})
# Excel keeps and shows 15 significant digits; the binary double behind a computed cell may
# carry noise beyond them (1234.5600000000001 is shown and meant as 1234.56).
_EXCEL_DIGITS = 15

# What openpyxl and zipfile raise on a damaged workbook; translated to MALFORMED at this edge.
_BROKEN = (
    zipfile.BadZipFile, zlib.error, EOFError, OSError, KeyError, IndexError, ValueError, TypeError,
    AttributeError, SyntaxError, NotImplementedError, RuntimeError,
)


def iter_xlsx_rows(
    source: Source, limits: DecodeLimits = DEFAULT_LIMITS, *, sheet_title: str | None = None
) -> Iterator[dict[str, str]]:
    """Rows of the sheet titled ``sheet_title`` (when there is one), else of the first sheet, of an
    XLSX file (path or seekable binary stream).

    Raises ``PayloadError``: ``PAYLOAD_TOO_LARGE``, ``ZIP_BOMB``, ``MALFORMED``, ``XML_FORBIDDEN``,
    ``HEADER_MISSING``.
    """
    with _opened(source) as stream, _translated():
        check_size(_stream_size(stream), limits, "the file")
        with zipfile.ZipFile(stream) as archive:
            check_archive(archive, limits)
        stream.seek(0)
        yield from _sheet_rows(stream, limits, sheet_title)


def decode_xlsx(data: bytes, *, limits: DecodeLimits) -> list[dict[str, str]]:
    check_size(len(data), limits)
    return list(iter_xlsx_rows(io.BytesIO(data), limits))


def decode(data: bytes, *, limits: DecodeLimits, encoding: str | None = None) -> Any:
    if encoding is not None:
        raise PayloadError("ENCODING", "an XLSX file has no configurable text encoding")
    return decode_xlsx(data, limits=limits)


def cell_text(value: object) -> str:
    """A cell value as text: dates ISO, integral numbers without ``.0``, other numbers in plain notation."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        # Excel's 15 significant digits, in plain notation: 3.30102199002273e+17 becomes
        # "330102199002273000" (int() would give ...273024); an integral value has no ".0"
        # (330106.0 is the division code 330106, 5000.0 is 5000 yuan).
        if not math.isfinite(value):
            return str(value)
        text = format(Decimal(format(value, f".{_EXCEL_DIGITS}g")), "f")
        return text.rstrip("0").rstrip(".") if "." in text else text
    if isinstance(value, datetime):
        if value.time() == time(0):
            return value.date().isoformat()
        return value.isoformat(timespec="microseconds" if value.microsecond else "seconds")
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return str(value)
    return str(value)


def _sheet_rows(stream: IO[bytes], limits: DecodeLimits, sheet_title: str | None) -> Iterator[dict[str, str]]:
    from openpyxl import load_workbook  # the protocol library, imported only where it is used

    with warnings.catch_warnings():
        # openpyxl warns about styles and extensions it ignores; that is not the payload's fault.
        warnings.simplefilter("ignore", UserWarning)
        workbook = load_workbook(stream, read_only=True, data_only=True, keep_links=False)
    try:
        if not workbook.worksheets:
            raise PayloadError("MALFORMED", "the workbook has no worksheet（工作簿中没有工作表）")
        _recognise_cjk_dates(workbook)
        sheet = _data_sheet(workbook, sheet_title)
        # A declared dimension (A1:XFD1048576) would make openpyxl pad every row to it.
        sheet.reset_dimensions()
        rows = (_texts(values) for values in _quietly(sheet.iter_rows(values_only=True)))
        header_cells = next(rows, None)
        if header_cells is None:
            raise PayloadError(
                "HEADER_MISSING", "the first sheet is empty（工作表为空，缺少表头行）", location="row 0"
            )
        yield from assemble_rows(normalise_header(header_cells), rows, limits, pad_short=True)
    finally:
        workbook.close()


def _data_sheet(workbook: Any, title: str | None) -> Any:
    """The sheet titled ``title`` when the workbook has one, else the first worksheet."""
    for sheet in workbook.worksheets:
        if title is not None and sheet.title.strip() == title:
            return sheet
    return workbook.worksheets[0]


def _recognise_cjk_dates(workbook: Any) -> None:
    """Mark the cell styles using a CJK built-in date format as dates. openpyxl keeps the date
    styles in the private ``_date_formats`` (indices into ``_cell_styles``) and reads it when the
    rows are read; custom formats were renumbered from 164 on, so these ids are built-ins."""
    styles = getattr(workbook, "_cell_styles", None)
    dates = getattr(workbook, "_date_formats", None)
    if styles is None or not isinstance(dates, set):
        return
    for index, style in enumerate(styles):
        if getattr(style, "numFmtId", None) in CJK_DATE_FORMAT_IDS:
            dates.add(index)


def _quietly(rows: Iterator[Sequence[object]]) -> Iterator[Sequence[object]]:
    """openpyxl's rows in small batches read with its warnings silenced (a date cell out of range
    warns and becomes ``#VALUE!``); never yielding inside ``catch_warnings``, whose state is global."""
    while True:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            batch = list(itertools.islice(rows, _BATCH_ROWS))
        if not batch:
            return
        yield from batch


def _texts(values: Sequence[object]) -> list[str]:
    return [cell_text(value) for value in values]


@contextmanager
def _opened(source: Source) -> Iterator[IO[bytes]]:
    if isinstance(source, str | os.PathLike):
        try:
            with Path(source).open("rb") as stream:
                yield stream
        except FileNotFoundError as exc:
            raise PayloadError("MALFORMED", f"no such file: {source}", location=str(source)) from exc
    else:
        yield source


@contextmanager
def _translated() -> Iterator[None]:
    try:
        yield
    except DefusedXmlException as exc:
        raise PayloadError(
            "XML_FORBIDDEN", f"the workbook's XML is refused: {exc}（XML 含禁止的声明）"
        ) from exc
    except _BROKEN as exc:
        raise PayloadError("MALFORMED", f"not a readable XLSX file: {exc}（不是有效的 XLSX 文件）") from exc


def _stream_size(stream: IO[bytes]) -> int:
    position = stream.tell()
    size = stream.seek(0, io.SEEK_END)
    stream.seek(position)
    return size
