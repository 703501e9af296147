"""Envelope metadata of an exchanged file, as the batch-file contract defines it.

Name: ``{provider_uscc}_{kind}_{yyyyMMdd}_{seq}.{ext}``; ``submitted_at`` of CSV/XLSX rows is the
modification time of the ``.ok`` marker (the data file's own when there is no marker).
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

FILE_NAME = re.compile(r"^(?P<provider>[0-9A-Z]{18})_(?P<kind>[A-Z0-9]{2,8})_(?P<date>[0-9]{8})_(?P<seq>[0-9]{3})$")
SHANGHAI = ZoneInfo("Asia/Shanghai")


def parse_file_name(name: str) -> dict[str, str] | None:
    """The parts of a contract file name (without extension), or None when it does not follow the rule."""
    match = FILE_NAME.fullmatch(Path(name).stem)
    return match.groupdict() if match else None


def file_meta(path: Path) -> dict[str, Any]:
    marker = path.with_suffix(".ok")
    stamp_source = marker if marker.exists() else path
    mtime = datetime.fromtimestamp(stamp_source.stat().st_mtime, tz=SHANGHAI)
    meta: dict[str, Any] = {"file": path.name, "file_mtime": mtime.isoformat(timespec="seconds"), "location": path.name}
    parts = parse_file_name(path.name)
    if parts:
        meta["provider_uscc"] = parts["provider"]
        meta["file_kind"] = parts["kind"]
    return meta
