"""Reading an exchanged file: verify it against its marker before anything is published, then
stream its rows with their data-row numbers.

Verification reads the whole file once: SHA-256, size and row count (F001/F002), encoding (F003)
and header (F004). For a CSV without quote characters the rows are counted on the bytes (a line
end is a row end); otherwise the csv reader counts them. Memory stays bounded by one read chunk
(CSV), openpyxl's read-only mode (XLSX) or ``max_bytes`` (XML, decoded whole; the contract's files
are ≤ 20 MB).
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
    if verified.rows != marker.rows:
        raise FileRefused("F001", f"文件实有数据 {verified.rows} 行，与 .ok 标记的 {marker.rows} 行不符",
                          f"{verified.rows} data rows, the marker says {marker.rows}")
    if verified.rows > limits.max_rows:
        raise FileRefused("F003", f"数据行数 {verified.rows} 超过上限 {limits.max_rows}",
                          f"{verified.rows} rows, over the limit of {limits.max_rows}")
    return verified


@dataclass(slots=True)
class _Scan:
    quotes: int = 0
    newlines: int = 0
    bare_cr: bool = False
    tail: bytes = b""
    encoding: str | None = None


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
            scan.newlines += chunk.count(b"\n")
            scan.bare_cr = scan.bare_cr or chunk.count(b"\r") != chunk.count(b"\r\n") or chunk.endswith(b"\r")
            scan.tail = (scan.tail + chunk)[-4096:]
            try:
                decoder.decode(chunk)
            except PayloadError:
                scan.encoding = "invalid"  # reported by _count with its location, after the SHA check
                decoder = None
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
        return Verified(rows=_rows_from_lines(scan), sha256="", encoding=scan.encoding)
    rows = sum(1 for _ in iter_rows(path, fmt, limits=limits, encoding=encoding))
    return Verified(rows=rows, sha256="", encoding=scan.encoding)


def _rows_from_lines(scan: _Scan) -> int:
    """Data rows of a quote-free CSV: its lines without the header and the blank lines at the end."""
    trailing = len(scan.tail) - len(scan.tail.rstrip(b"\r\n"))
    trailing_newlines = scan.tail[len(scan.tail) - trailing:].count(b"\n") if trailing else 0
    lines = scan.newlines - trailing_newlines + 1  # the last line may have no line end
    return max(lines - 1, 0)


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
    """The data rows of a CSV or XLSX file, streamed (XML records come from ``Verified``)."""
    if fmt == "xlsx":
        yield from iter_xlsx_rows(path, limits=limits)
        return
    with path.open("rb") as stream:
        yield from iter_csv_rows(stream, encoding=encoding, limits=limits)
