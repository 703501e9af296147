"""CSV (RFC 4180, CRLF or LF, GBK/GB18030 or UTF-8) -> rows ``{header: cell string}``, streamed.

Memory stays bounded by one chunk plus one record: bytes are read in chunks, decoded by an
incremental decoder (a multibyte character split across chunks is completed by the next chunk),
cut into physical lines and handed to ``csv.reader``, which joins quoted multi-line fields.
A field longer than ``csv.field_size_limit()`` (131,072 characters by default) is ``MALFORMED``.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from typing import Any, BinaryIO

from gateway.errors import PayloadError

from .limits import DEFAULT_LIMITS, DecodeLimits, check_size
from .tabular import assemble_rows, normalise_header
from .text_encoding import TextDecoder

_LINE_END = re.compile(r"\r\n|\r|\n")


def iter_csv_rows(
    stream: BinaryIO,
    *,
    encoding: str | None = None,
    chunk_bytes: int | None = None,
    limits: DecodeLimits = DEFAULT_LIMITS,
    pad_short: bool = False,
) -> Iterator[dict[str, str]]:
    """Rows of a CSV byte stream, one dict per data row; header in the first record.

    ``encoding`` None detects (``text_encoding``). A record with fewer fields than the header is
    ``MALFORMED`` unless ``pad_short`` (its missing trailing cells are then empty: Excel leaves out
    the separators of trailing blank cells in some rows). Raises ``PayloadError`` (``ENCODING``,
    ``HEADER_MISSING``, ``MALFORMED``, ``PAYLOAD_TOO_LARGE``) when it meets the problem, so rows
    before a bad one have already been yielded.
    """
    size = chunk_bytes or limits.csv_chunk_bytes
    reader = csv.reader(_iter_lines(stream, TextDecoder(encoding), size, limits), strict=True)
    records = _records(reader)
    header_cells = next(records, None)
    if header_cells is None:
        raise PayloadError("HEADER_MISSING", "the file is empty（文件为空，缺少表头行）", location="row 0")
    header = normalise_header(header_cells)
    yield from assemble_rows(header, records, limits, pad_short=pad_short)


def decode_csv(data: bytes, *, limits: DecodeLimits, encoding: str | None = None) -> list[dict[str, str]]:
    check_size(len(data), limits)
    return list(iter_csv_rows(io.BytesIO(data), encoding=encoding, limits=limits))


def decode(data: bytes, *, limits: DecodeLimits, encoding: str | None = None) -> Any:
    return decode_csv(data, limits=limits, encoding=encoding)


def _records(reader: Any) -> Iterator[list[str]]:
    try:
        yield from reader
    except csv.Error as exc:
        raise PayloadError(
            "MALFORMED", f"invalid CSV: {exc}（CSV 格式错误）", location=f"line {reader.line_num}"
        ) from exc


def _iter_lines(
    stream: BinaryIO, decoder: TextDecoder, chunk_bytes: int, limits: DecodeLimits
) -> Iterator[str]:
    """Physical lines with their line ends, as ``open(..., newline="")`` would give them."""
    total = 0
    parts: list[str] = []  # the current incomplete line, joined only once a line end arrives
    while True:
        chunk = stream.read(chunk_bytes)
        total += len(chunk)
        check_size(total, limits, "the file")
        final = not chunk
        text = decoder.decode(chunk, final=final)
        pending_cr = bool(parts) and parts[-1].endswith("\r")
        if not final and not pending_cr and _LINE_END.search(text) is None:
            parts.append(text)
            continue
        lines, rest = _split_lines("".join(parts) + text, final=final)
        parts = [rest] if rest else []
        yield from lines
        if final:
            yield from parts
            return


def _split_lines(buffer: str, *, final: bool) -> tuple[list[str], str]:
    lines: list[str] = []
    start = 0
    end_of_buffer = len(buffer)
    for match in _LINE_END.finditer(buffer):
        # A CR at the very end may be the first half of a CRLF still in the next chunk.
        if match.end() == end_of_buffer and match.group() == "\r" and not final:
            break
        lines.append(buffer[start : match.end()])
        start = match.end()
    return lines, buffer[start:]
