"""Reading an exchanged file: verify it against its marker before anything is published, then
stream its rows with their data-row numbers.

Verification reads the whole file once: SHA-256, size and row count (F001/F002), encoding (F003)
and header (F004). For a CSV without quote characters the rows are counted on the bytes (a line
end is a row end, a line of nothing but separators is blank); otherwise the csv reader counts
them. Memory stays bounded by one read chunk (CSV), openpyxl's read-only mode (XLSX) or
``max_bytes`` (XML, decoded whole; the contract's files are ≤ 20 MB).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from connectors.batch_files.naming import FileRefused, Marker
from connectors.codecs import DecodeLimits, decode, iter_csv_rows, iter_xlsx_rows
from connectors.codecs.text_encoding import TextDecoder
from gateway.errors import PayloadError

READ_CHUNK_BYTES = 1024 * 1024
XLSX_SHEET_TITLE = "行政处罚"  # the contract's first sheet; preferred when a notes sheet precedes it

_PAYLOAD_REASONS = {
    "ENCODING": "字符编码错误（应为 GBK）",
    "HEADER_MISSING": "表头缺失或不完整",
    "MALFORMED": "文件结构错误，无法读取",
    "PAYLOAD_TOO_LARGE": "文件大小或行数超过上限",
    "ZIP_BOMB": "压缩文件解压后过大（疑似压缩炸弹），已拒收",
    "XML_FORBIDDEN": "XML 含 DTD 或实体声明，已拒收",
}


@dataclass(slots=True)
class Verified:
    """A file that matches its marker; XML files keep their decoded records and header."""

    rows: int
    sha256: str
    encoding: str | None
    # Data rows with the blank rows between them (kept so that row numbers stay the file's); a
    # marker may count either way (blank rows are no data, but exporters count sheet rows).
    span: int = -1
    xml_records: list[Any] = field(default_factory=list)
    xml_header: dict[str, Any] = field(default_factory=dict)


def refusal(exc: PayloadError) -> FileRefused:
    """A decoder's refusal as a file-level failure. The contract has no code for hostile or
    unreadable content: F004 for a header problem, F003 (unreadable as GBK text) for the rest."""
    code = "F004" if exc.code == "HEADER_MISSING" else "F003"
    reason = _PAYLOAD_REASONS.get(exc.code, "文件无法读取")
    where = f"（{exc.location}）" if exc.location else ""
    return FileRefused(code, f"{reason}{where}", f"{exc.code}: {exc}")


def verify(path: Path, fmt: str, marker: Marker, *, limits: DecodeLimits, encoding: str | None,
           required_columns: tuple[str, ...]) -> Verified:
    """Check the file against its marker; raises ``FileRefused`` with the F code."""
    size = path.stat().st_size
    if size > limits.max_bytes:
        raise FileRefused("F003", f"文件大小 {size} 字节，超过上限 {limits.max_bytes} 字节",
                          f"file of {size} bytes is over the limit of {limits.max_bytes}")
    digest, scan = _hash_and_scan(path, fmt, encoding)
    if digest != marker.sha256:
        raise FileRefused("F002", "文件 SHA-256 与 .ok 标记不符（文件不完整或已被修改）",
                          "SHA-256 differs from the marker (truncated or modified file)")
    try:
        verified = _count(path, fmt, scan, limits=limits, encoding=encoding, required_columns=required_columns)
    except PayloadError as exc:
        raise refusal(exc) from exc
    verified.sha256 = digest
    span = max(verified.span, verified.rows)
    if marker.rows not in (verified.rows, span):
        raise FileRefused("F001", f"文件实有数据 {verified.rows} 行，与 .ok 标记的 {marker.rows} 行不符",
                          f"{verified.rows} data rows, the marker says {marker.rows}")
    if span > limits.max_rows:
        raise FileRefused("F003", f"数据行数 {span} 超过上限 {limits.max_rows}",
                          f"{span} rows, over the limit of {limits.max_rows}")
    return verified


@dataclass(slots=True)
class _Scan:
    """What the bytes of a CSV say about its rows: lines with a value and the blank lines among
    them (a blank line: nothing but separators, as editors leave after the data)."""

    quotes: int = 0
    bare_cr: bool = False
    encoding: str | None = None
    filled_lines: int = 0
    inner_blank_lines: int = 0
    pending_blank_lines: int = 0
    partial_line: bytes = b""

    def add_lines(self, chunk: bytes, *, final: bool) -> None:
        lines = (self.partial_line + chunk).split(b"\n")
        self.partial_line = b"" if final else lines.pop()
        for line in lines:
            if line.rstrip(b"\r").strip(b","):
                self.filled_lines += 1
                self.inner_blank_lines += self.pending_blank_lines
                self.pending_blank_lines = 0
            else:
                self.pending_blank_lines += 1


def _hash_and_scan(path: Path, fmt: str, encoding: str | None) -> tuple[str, _Scan]:
    """SHA-256 of the bytes; for CSV also the counts a quote-free file's rows follow from, and a
    strict decode of every byte (encoding errors are found before any row is published)."""
    digest = hashlib.sha256()
    scan = _Scan()
    decoder = TextDecoder(encoding) if fmt == "csv" else None
    with path.open("rb") as stream:
        while chunk := stream.read(READ_CHUNK_BYTES):
            digest.update(chunk)
            if decoder is None:
                continue
            scan.quotes += chunk.count(b'"')
            scan.bare_cr = scan.bare_cr or chunk.count(b"\r") != chunk.count(b"\r\n") or chunk.endswith(b"\r")
            scan.add_lines(chunk, final=False)
            try:
                decoder.decode(chunk)
            except PayloadError:
                scan.encoding = "invalid"  # reported by _count with its location, after the SHA check
                decoder = None
    scan.add_lines(b"", final=True)
    if decoder is not None:
        try:
            decoder.decode(b"", final=True)
        except PayloadError:
            scan.encoding = "invalid"
        else:
            scan.encoding = decoder.encoding
    return digest.hexdigest(), scan


def _count(path: Path, fmt: str, scan: _Scan, *, limits: DecodeLimits, encoding: str | None,
           required_columns: tuple[str, ...]) -> Verified:
    if fmt == "xml":
        tree = decode("xml", path.read_bytes(), encoding=encoding, limits=limits)
        records, header = xml_parts(tree)
        return Verified(rows=len(records), sha256="", encoding=None, xml_records=records, xml_header=header)
    first = next(iter_rows(path, fmt, limits=limits, encoding=encoding), None)
    if first is not None:
        missing = [c for c in required_columns if c not in first]
        if missing:
            raise FileRefused("F004", f"表头缺少必需列：{'、'.join(missing)}", f"missing columns: {missing}")
    if fmt == "csv" and scan.quotes == 0 and not scan.bare_cr and scan.encoding != "invalid":
        rows = max(scan.filled_lines - 1, 0)  # without the header
        return Verified(rows=rows, sha256="", encoding=scan.encoding, span=rows + scan.inner_blank_lines)
    rows = span = 0
    for row in iter_rows(path, fmt, limits=limits, encoding=encoding):
        span += 1
        rows += any(row.values())
    return Verified(rows=rows, sha256="", encoding=scan.encoding, span=span)


def xml_parts(tree: Any) -> tuple[list[Any], dict[str, Any]]:
    """The ``Records/Record`` list and the ``Header`` of a DataPackage tree."""
    if not isinstance(tree, dict):
        raise PayloadError("MALFORMED", "not a DataPackage（不是 DataPackage 报文）")
    header = tree.get("Header")
    holder = tree.get("Records")
    found = holder.get("Record") if isinstance(holder, dict) else None
    if found is None or found == "":
        records: list[Any] = []
    elif isinstance(found, list):
        records = found
    else:
        records = [found]
    return records, header if isinstance(header, dict) else {}


def iter_rows(path: Path, fmt: str, *, limits: DecodeLimits, encoding: str | None) -> Iterator[dict[str, str]]:
    """The data rows of a CSV or XLSX file, streamed (XML records come from ``Verified``), keyed by
    the header names without inner blanks (``_compact_names``)."""
    if fmt == "xlsx":
        yield from _compact_names(iter_xlsx_rows(path, limits=limits, sheet_title=XLSX_SHEET_TITLE))
        return
    with path.open("rb") as stream:
        # A short row is the row's problem (its empty cells are reported), not the whole file's.
        yield from _compact_names(iter_csv_rows(stream, encoding=encoding, limits=limits, pad_short=True))


def _compact_names(rows: Iterator[dict[str, str]]) -> Iterator[dict[str, str]]:
    """Rows keyed by header names with their inner whitespace removed: templates wrap long names
    (a line break in the cell) or pad them, and no contract header has a blank of its own. A name
    that would then collide with another is left as it is."""
    first = next(rows, None)
    if first is None:
        return
    names = list(first)
    compact = ["".join(name.split()) for name in names]
    if compact == names:
        yield first
        yield from rows
        return
    renamed = [c if compact.count(c) == 1 and (c == n or c not in names) else n
               for n, c in zip(names, compact, strict=True)]
    yield dict(zip(renamed, first.values(), strict=True))
    for row in rows:
        yield dict(zip(renamed, row.values(), strict=True))
