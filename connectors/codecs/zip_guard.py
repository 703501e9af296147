"""Checks on a zip archive (an XLSX file) made from its directory, before anything is inflated.

``zipfile`` stops inflating a member at the size its directory entry declares (and then fails
the CRC), so bounding the declared sizes bounds what reading can cost even when they lie.
"""

from __future__ import annotations

import re
import zipfile

from gateway.errors import PayloadError

from .limits import DecodeLimits

_DRIVE = re.compile(r"^[A-Za-z]:")
_XML_MEMBER = (".xml", ".rels", ".vml")
_PROLOGUE_BYTES = 64 * 1024
_ROOT_START = re.compile(rb"<[A-Za-z_]")
_DECLARATIONS = (b"<!DOCTYPE", b"<!ENTITY")
# General-purpose flag bits: 0 encrypted, 5 compressed patched data, 6 strong encryption.
_REFUSED_FLAGS = 0x1 | 0x20 | 0x40


def check_archive(archive: zipfile.ZipFile, limits: DecodeLimits) -> None:
    """Refuse hostile or broken archives: ``ZIP_BOMB`` for size, count and ratio; ``MALFORMED``
    for unsafe or duplicate member names, encryption and unusual compression; ``XML_FORBIDDEN``
    for a DTD in a member's prologue."""
    members = archive.infolist()
    if len(members) > limits.xlsx_max_members:
        raise _bomb(f"{len(members)} members, more than {limits.xlsx_max_members}")
    names: set[str] = set()
    total_bytes = 0
    for info in members:
        _check_name(info.filename, names)
        _check_member(info, limits)
        total_bytes += info.file_size
        if total_bytes > limits.xlsx_max_uncompressed_bytes:
            raise _bomb(f"members inflate to more than {limits.xlsx_max_uncompressed_bytes} bytes")
    for info in members:
        if info.filename.lower().endswith(_XML_MEMBER):
            _check_prologue(archive, info)


def _bomb(reason: str) -> PayloadError:
    return PayloadError("ZIP_BOMB", f"the archive is refused: {reason}（压缩文件异常，疑似压缩炸弹）")


def _malformed(reason: str, member: str) -> PayloadError:
    return PayloadError(
        "MALFORMED", f"the archive is refused: {reason}（压缩文件结构异常）", location=f"member {member}"
    )


def _check_name(name: str, seen: set[str]) -> None:
    parts = name.replace("\\", "/").split("/")
    if name.startswith(("/", "\\")) or _DRIVE.match(name) or ".." in parts or "\x00" in name:
        raise _malformed(f"unsafe member path {name!r}", name)
    if name in seen:
        raise _malformed(f"duplicate member {name!r}", name)
    seen.add(name)


def _check_member(info: zipfile.ZipInfo, limits: DecodeLimits) -> None:
    if info.flag_bits & _REFUSED_FLAGS:
        raise _malformed(f"encrypted or patched member (flags {info.flag_bits:#x})", info.filename)
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise _malformed(f"unsupported compression {info.compress_type}", info.filename)
    if info.file_size > limits.xlsx_ratio_min_bytes and (
        info.file_size > limits.xlsx_max_ratio * max(info.compress_size, 1)
    ):
        raise _bomb(
            f"member {info.filename!r} inflates {info.compress_size} bytes to {info.file_size}"
            f" (more than {limits.xlsx_max_ratio}:1)"
        )


def _check_prologue(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> None:
    with archive.open(info) as member:
        head = member.read(_PROLOGUE_BYTES)
    root = _ROOT_START.search(head)
    prologue = head if root is None else head[: root.start()]
    if any(marker in prologue for marker in _DECLARATIONS):
        raise PayloadError(
            "XML_FORBIDDEN", f"member {info.filename!r} declares a DTD（XML 含 DTD 声明，已拒绝）",
            location=f"member {info.filename}",
        )
