"""Claiming files of the exchange directory, safely with several gateway instances on it.

A data file is claimed by taking an exclusive ``flock`` on it and only then renaming it (and its
marker) into ``processing/``: the lock follows the file, so another instance can neither claim it
from ``upload/`` (the lock or the rename fails) nor take it over in ``processing/`` while its
holder lives. A file in ``processing/`` whose lock can be taken is an orphan of a crashed
instance and is resumed from its checkpoint.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO
from zoneinfo import ZoneInfo

from connectors.batch_files.naming import DATA_EXTENSIONS, MARKER_SUFFIX, MAX_MARKER_BYTES, FileRefused

SHANGHAI = ZoneInfo("Asia/Shanghai")


@dataclass(frozen=True, slots=True)
class ProviderDirs:
    root: Path
    provider: str

    @property
    def upload(self) -> Path:
        return self.root / "upload"

    @property
    def processing(self) -> Path:
        return self.root / "processing"

    @property
    def result(self) -> Path:
        return self.root / "result"

    @property
    def archive(self) -> Path:
        return self.root / "archive"

    @property
    def failed(self) -> Path:
        return self.root / "failed"

    def ensure(self) -> None:
        for folder in (self.processing, self.result, self.archive, self.failed):
            folder.mkdir(exist_ok=True)


@dataclass(slots=True)
class Claimed:
    """A claimed data file in ``processing/``; the open handle holds the lock until ``release``."""

    dirs: ProviderDirs
    data: Path
    handle: BinaryIO

    @property
    def marker(self) -> Path:
        return self.data.with_suffix(MARKER_SUFFIX)

    @property
    def base(self) -> str:
        return self.data.stem

    def release(self) -> None:
        self.handle.close()


class NotARegularFile(OSError):
    """A FIFO, device or directory where a data file should be: never read (a FIFO would block)."""


def open_regular(path: Path) -> BinaryIO:
    """Open for reading without following a symlink (``OSError`` ELOOP) nor blocking on a FIFO;
    ``NotARegularFile`` for anything but a regular file."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise NotARegularFile(errno.EINVAL, "not a regular file", str(path))
    return os.fdopen(fd, "rb")


def read_marker(path: Path) -> bytes:
    """A marker's bytes, bounded, from a regular file only: a marker that is a symlink, a FIFO or a
    device (``/dev/zero``) is refused (``F001``) without being followed or read."""
    try:
        with open_regular(path) as stream:
            return stream.read(MAX_MARKER_BYTES + 1)
    except NotARegularFile as exc:
        raise FileRefused("F001", ".ok 标记文件不是普通文件，已拒收", "the marker is not a regular file") from exc
    except OSError as exc:
        if exc.errno != errno.ELOOP:
            raise
        raise FileRefused("F001", ".ok 标记文件不是普通文件（符号链接），已拒收", "the marker is a symlink") from exc


def _lock(path: Path) -> BinaryIO | None:
    """Open (``open_regular``) and lock; None when the file is gone or another holder has it."""
    try:
        handle = open_regular(path)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


def claim(dirs: ProviderDirs, data: Path) -> Claimed | None:
    """Move ``upload/{name}`` and its marker into ``processing/``; None when someone else has it.

    Raises ``OSError`` (ELOOP) for a symlink, ``NotARegularFile`` for a FIFO or device: the caller
    refuses it without reading it.
    """
    handle = _lock(data)
    if handle is None:
        return None
    try:
        if os.fstat(handle.fileno()).st_ino != os.lstat(data).st_ino:
            handle.close()
            return None
        target = dirs.processing / data.name
        os.rename(data, target)
    except FileNotFoundError:
        handle.close()
        return None
    marker = data.with_suffix(MARKER_SUFFIX)
    with contextlib.suppress(FileNotFoundError):  # a resumed claim may have moved it already
        os.rename(marker, target.with_suffix(MARKER_SUFFIX))
    return Claimed(dirs=dirs, data=target, handle=handle)


def orphans(dirs: ProviderDirs) -> list[Claimed]:
    """Files left in ``processing/`` by a holder that is gone, now locked by this instance."""
    found: list[Claimed] = []
    if not dirs.processing.is_dir():
        return found
    for path in sorted(dirs.processing.iterdir()):
        if path.suffix.lstrip(".") not in DATA_EXTENSIONS or not path.is_file() or path.is_symlink():
            continue  # only this module moves files here, and only regular ones
        handle = _lock(path)
        if handle is not None:
            stray = dirs.upload / path.with_suffix(MARKER_SUFFIX).name  # crash between the two renames
            if stray.exists() and not path.with_suffix(MARKER_SUFFIX).exists():
                os.rename(stray, path.with_suffix(MARKER_SUFFIX))
            found.append(Claimed(dirs=dirs, data=path, handle=handle))
    return found


def move_aside(path: Path, folder: Path) -> None:
    """Rename a file (a symlink itself, never its target) into ``folder``, replacing a same name."""
    folder.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        os.replace(path, folder / path.name)


def archive(claimed: Claimed, now: datetime) -> Path:
    """Processed data + marker into ``archive/{yyyyMMdd}/`` (the contract's archive folder, a
    folder per day in it as issue #4 asks: a day's files are found, and removed, together)."""
    folder = claimed.dirs.archive / now.astimezone(SHANGHAI).strftime("%Y%m%d")
    move_aside(claimed.marker, folder)
    move_aside(claimed.data, folder)
    return folder / claimed.data.name


def fail(dirs: ProviderDirs, paths: list[Path], code: str, reason: str) -> None:
    """Data and marker into ``failed/`` with ``{name}.reason.txt`` (code and reason, UTF-8)."""
    dirs.failed.mkdir(exist_ok=True)
    for path in paths:
        move_aside(path, dirs.failed)
    named = paths[0].name if paths else "unknown"
    (dirs.failed / f"{named}.reason.txt").write_text(f"{code} {reason}\n", encoding="utf-8")


def is_symlink_error(exc: OSError) -> bool:
    """A data file the connector refuses without reading: a symlink, a FIFO or a device."""
    return isinstance(exc, NotARegularFile) or exc.errno == errno.ELOOP
