"""File names and ``.ok`` markers of the exchange directory, and the file-level refusals (F codes)."""

from __future__ import annotations

import re
from codecs import BOM_UTF8 as UTF8_BOM  # Notepad's "UTF-8" prefixes the otherwise ASCII line with it
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from connectors.file_meta import parse_file_name

DATA_EXTENSIONS: tuple[str, ...] = ("csv", "xlsx", "xml")
MARKER_SUFFIX = ".ok"
MAX_MARKER_BYTES = 1024
# Fields may be padded with blanks and the hex is read in either case: tools on the bureaus' side
# (PowerShell's Get-FileHash prints upper case) differ, and neither changes what the marker says.
_MARKER = re.compile(r"^[ \t]*(?P<name>[^|\x00]+?)[ \t]*\|[ \t]*(?P<rows>[0-9]{1,9})[ \t]*\|"
                     r"[ \t]*(?P<sha>[0-9A-Fa-f]{64})[ \t]*$")


class FileRefused(Exception):
    """A file-level failure: ``code`` is the contract's F code, ``message_zh`` goes to the result file."""

    def __init__(self, code: str, message_zh: str, message_en: str) -> None:
        super().__init__(f"{code}: {message_en}")
        self.code = code
        self.message_zh = message_zh
        self.message_en = message_en


@dataclass(frozen=True, slots=True)
class FileName:
    base: str
    provider: str
    kind: str
    export_date: str
    seq: str


@dataclass(frozen=True, slots=True)
class Marker:
    data_name: str
    rows: int
    sha256: str


def is_plain_name(name: str) -> bool:
    """A single path component: no separators, no parent references, no control characters."""
    return (bool(name) and name not in (".", "..") and "/" not in name and "\\" not in name
            and not any(ord(c) < 32 for c in name) and ".." not in name)


def parse_base(base: str, folder: str) -> FileName:
    """The parts of a contract base name; ``F005`` when it breaks the rule or names another provider."""
    parts = parse_file_name(base + ".x") if is_plain_name(base) else None
    if parts is None or not _valid_date(parts["date"]):
        raise FileRefused("F005", f"文件名“{_shown(base)}”不符合命名规则", f"file name {base!r} breaks the naming rule")
    if parts["provider"] != folder:
        raise FileRefused("F005", f"文件名中的统一社会信用代码“{parts['provider']}”与目录“{_shown(folder)}”不一致",
                          f"provider {parts['provider']} in the name is not the folder {folder!r}")
    return FileName(base=base, provider=parts["provider"], kind=parts["kind"], export_date=parts["date"],
                    seq=parts["seq"])


def parse_marker(text: bytes, expected_data_name: str) -> Marker:
    """The marker's one line; it must name exactly the data file it sits next to."""
    if len(text) > MAX_MARKER_BYTES:
        raise FileRefused("F001", ".ok 标记文件格式错误（过大）", "the .ok marker is too large")
    try:
        # One line; a trailing line end (CRLF, LF or none) and blank lines after it are tolerated.
        line = text.removeprefix(UTF8_BOM).decode("ascii").strip("\r\n")
    except UnicodeDecodeError as exc:
        raise FileRefused("F001", ".ok 标记文件格式错误（应为 ASCII）", "the .ok marker is not ASCII") from exc
    match = _MARKER.fullmatch(line)
    if match is None:
        raise FileRefused("F001", ".ok 标记文件格式错误（应为“文件名|行数|SHA-256”）", "the .ok marker is malformed")
    if match["name"] != expected_data_name:
        raise FileRefused("F005", f".ok 标记中的文件名“{_shown(match['name'])}”与数据文件不符",
                          f"the marker names {match['name']!r}, not {expected_data_name!r}")
    return Marker(data_name=match["name"], rows=int(match["rows"]), sha256=match["sha"].lower())


def data_files_for(upload: Path, base: str) -> list[Path]:
    """The data files beside a marker: ``{base}.csv|xlsx|xml`` that exist (one, when all is well)."""
    return [path for ext in DATA_EXTENSIONS if (path := upload / f"{base}.{ext}").exists() or path.is_symlink()]


def data_file_for(upload: Path, base: str) -> Path | None:
    """The data file of a marker: ``{base}.csv|xlsx|xml``; None while it is not there, ``F005`` when
    there are several (the contract's seq is unique across formats: which one the marker means is
    not known)."""
    found = data_files_for(upload, base)
    if len(found) > 1:
        formats = "、".join(p.suffix for p in found)
        raise FileRefused("F005", f"同一文件名“{_shown(base)}”有多个数据文件（{formats}），已拒收",
                          f"several data files share the base name {base!r}")
    return found[0] if found else None


def _valid_date(text: str) -> bool:
    try:
        date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        return False
    return True


def _shown(text: str) -> str:
    """A name as it may appear in a message: printable, bounded."""
    cleaned = "".join(c if c.isprintable() else "?" for c in text)
    return cleaned[:80]
