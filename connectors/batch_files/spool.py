"""Per-file spool: each row's result line and the first row of each key, on disk (bounded memory).

One SQLite file next to the claimed data file, committed once per chunk before the checkpoint is
saved, so a resumed file still has the results of the rows before its checkpoint. The result file
is written from it, in row order, when the whole file is done.
"""

from __future__ import annotations

import csv
import os
import sqlite3
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path

from connectors.batch_files.outcomes import ResultRow
from connectors.file_meta import SHANGHAI

RESULT_HEADER = ("行号", "处罚行为编号", "处理状态", "错误代码", "错误信息")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS results (row INTEGER PRIMARY KEY, key TEXT, status TEXT, codes TEXT, message TEXT);
CREATE TABLE IF NOT EXISTS first_rows (key TEXT PRIMARY KEY, row INTEGER NOT NULL);
"""


class Spool:
    def __init__(self, path: Path) -> None:
        self.path = path
        # Used from one worker thread at a time (asyncio.to_thread, sequentially), never concurrently.
        self._db = sqlite3.connect(path, isolation_level="DEFERRED", check_same_thread=False)
        self._closed = False
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def forget_from(self, row: int) -> None:
        """Drop what was spooled at or after ``row`` (the checkpoint was not saved for it)."""
        self._db.execute("DELETE FROM results WHERE row >= ?", (row,))
        self._db.execute("DELETE FROM first_rows WHERE row >= ?", (row,))
        self._db.commit()

    def first_rows(self, keys: Sequence[str]) -> dict[str, int]:
        """The first row already seen for each of these keys (those seen before)."""
        found: dict[str, int] = {}
        for start in range(0, len(keys), 500):
            part = keys[start:start + 500]
            marks = ",".join("?" * len(part))
            found.update(self._db.execute(f"SELECT key, row FROM first_rows WHERE key IN ({marks})", part))  # noqa: S608
        return found

    def add(self, results: Iterable[ResultRow], first_rows: Iterable[tuple[str, int]]) -> None:
        self._db.executemany("INSERT OR REPLACE INTO results VALUES (?, ?, ?, ?, ?)",
                             ((r.row, r.key, r.status, r.codes, r.message) for r in results))
        self._db.executemany("INSERT OR IGNORE INTO first_rows VALUES (?, ?)", first_rows)
        self._db.commit()

    def counts(self) -> dict[str, int]:
        return {str(s): int(n) for s, n in self._db.execute("SELECT status, count(*) FROM results GROUP BY status")}

    def write_result(self, target: Path, encoding: str) -> None:
        """``{base}.result.csv``: header and one line per row in file order, CRLF, atomically."""
        write_result_file(target, encoding, (r for r in self._db.execute(
            "SELECT row, key, status, codes, message FROM results ORDER BY row")))

    def close(self, *, delete: bool = False) -> None:
        if not self._closed:
            self._db.close()
            self._closed = True
        if delete:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)


# The contract's result file is GBK. GB18030 (what GBK input is decoded as) writes a character
# beyond GBK as a four-byte sequence that no GBK reader can decode, so the result file is encoded
# as GBK proper and such a character (from an XLSX or XML value) is shown as "?".
_GBK_FAMILY = frozenset({"gbk", "gb18030", "gb2312", "cp936"})


def keep_earlier_result(target: Path) -> Path | None:
    """An existing result file of this name renamed aside (``{base}.result.{yyyyMMddHHmmss}.csv``,
    its own time), so that a refusal of a re-dropped name (F006) does not erase the per-row result
    of the file processed under it before: the bureau may still be correcting those rows."""
    try:
        stamp = datetime.fromtimestamp(target.stat().st_mtime, SHANGHAI).strftime("%Y%m%d%H%M%S")
    except FileNotFoundError:
        return None
    kept = target.with_name(target.name.removesuffix(".csv") + f".{stamp}.csv")
    os.replace(target, kept)
    return kept


def write_result_file(target: Path, encoding: str, rows: Iterable[Sequence[object]]) -> None:
    codec = "gbk" if encoding.lower().replace("_", "") in _GBK_FAMILY else encoding
    temporary = target.with_name(f".{target.name}.tmp")
    with temporary.open("w", encoding=codec, errors="replace", newline="") as out:
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(RESULT_HEADER)
        writer.writerows(rows)
        out.flush()
        os.fsync(out.fileno())
    os.replace(temporary, target)
