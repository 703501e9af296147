"""Decode limits: how much a payload may make the gateway read, inflate or nest before it is refused."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.errors import PayloadError

MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class DecodeLimits:
    """Bounds every decoder enforces before (or while) parsing.

    ``max_bytes`` bounds the encoded payload (a whole XLSX file, a CSV file read as a stream);
    ``max_rows`` the data rows of a tabular payload (header excluded). The XLSX bounds are checked
    on the zip directory before anything is inflated; ``xlsx_max_ratio`` applies to members larger
    than ``xlsx_ratio_min_bytes`` (tiny members compress absurdly well without being hostile).
    """

    max_bytes: int = 20 * MIB
    max_rows: int = 50_000
    xml_max_depth: int = 100
    xlsx_max_members: int = 500
    xlsx_max_uncompressed_bytes: int = 256 * MIB
    xlsx_max_ratio: int = 200
    xlsx_ratio_min_bytes: int = 1 * MIB
    csv_chunk_bytes: int = 64 * 1024


DEFAULT_LIMITS = DecodeLimits()


def check_size(size_bytes: int, limits: DecodeLimits, what: str = "payload") -> None:
    """Refuse a payload larger than ``limits.max_bytes``."""
    if size_bytes > limits.max_bytes:
        raise PayloadError(
            "PAYLOAD_TOO_LARGE",
            f"{what} is {size_bytes} bytes, more than the limit of {limits.max_bytes} bytes"
            f"（数据大小 {size_bytes} 字节，超过上限 {limits.max_bytes} 字节）",
        )


def check_rows(rows: int, limits: DecodeLimits) -> None:
    """Refuse a tabular payload with more data rows than ``limits.max_rows``."""
    if rows > limits.max_rows:
        raise PayloadError(
            "PAYLOAD_TOO_LARGE",
            f"more than {limits.max_rows} data rows（数据行数超过上限 {limits.max_rows}）",
            location=f"row {rows}",
        )
