"""HJ 212-2017 packets -> the tree of docs/codecs.md, and back (``encode_hj212``).

Packet = ``##`` + 4-digit length of the data segment in bytes + data segment + 4 hex CRC + CRLF.
The CRC is HJ 212-2017 Appendix A ``CRC16_Checkout`` over the data segment only (reg = 0xFFFF;
per byte ``reg = (reg >> 8) ^ byte``, then 8 shifts with 0xA001) — not CRC-16/MODBUS.
Data segment: ``QN=..;ST=..;CN=..;PW=..;MN=..;Flag=..;[PNUM=..;PNO=..;]CP=&&...&&``; inside CP,
``;`` separates groups and ``,`` separates ``key=value`` items; ``{code}-{Name}`` keys are factor
values, the others (``DataTime``...) are parameters. Values stay strings as written.
The packet is ASCII; anything else is ``ENCODING``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from gateway.errors import PayloadError

from .limits import DecodeLimits, check_size

MASK = "***"
_HEAD_ORDER = ("QN", "ST", "CN", "PW", "MN", "Flag", "PNUM", "PNO")
_REQUIRED = ("ST", "CN", "PW", "MN")
_RESERVED = frozenset({"factors", "params", "raw", "DataTime", "CP"})
_SECRET_PARAMS = frozenset({"PW", "NewPW"})
_PASSWORDS = re.compile(rb"((?:^##\d{4}|^|[;,&])(?:PW|NewPW)=)[^;,&]*")
_FACTOR_KEY = re.compile(r"([A-Za-z0-9]+)-([A-Za-z][A-Za-z0-9]*)")
_CP_OPEN = ";CP=&&"
_FORBIDDEN_IN_VALUES = re.compile(r"[;,=&\r\n]")
_MAX_SEGMENT_BYTES = 9999


def crc16(data: bytes) -> int:
    """HJ 212-2017 Appendix A CRC16_Checkout."""
    reg = 0xFFFF
    for byte in data:
        reg = (reg >> 8) ^ byte
        for _ in range(8):
            lsb = reg & 1
            reg >>= 1
            if lsb:
                reg ^= 0xA001
    return reg


def decode_hj212(data: bytes, *, limits: DecodeLimits) -> dict[str, Any]:
    """The packet's tree; ``LENGTH``, ``CRC``, ``MALFORMED`` or ``ENCODING`` with the reason."""
    check_size(len(data), limits)
    segment = _unframe(data.removesuffix(b"\n").removesuffix(b"\r"))
    try:
        text = segment.decode("ascii")
    except UnicodeDecodeError as exc:
        offset = 6 + exc.start
        raise PayloadError(
            "ENCODING", f"HJ 212 packet is not ASCII at byte {offset}（HJ 212 报文含非 ASCII 字符）",
            location=f"byte {offset}",
        ) from exc
    head_text, cp_text = _split_segment(text)
    tree: dict[str, Any] = _parse_head(head_text)
    factors, params = _parse_cp(cp_text)
    if "DataTime" in params:
        tree["DataTime"] = params["DataTime"]
    tree["factors"] = factors
    tree["params"] = {key: MASK if key in _SECRET_PARAMS else value for key, value in params.items()}
    tree["raw"] = _masked_packet(head_text, cp_text)
    return tree


def decode(data: bytes, *, limits: DecodeLimits, encoding: str | None = None) -> Any:
    if encoding is not None:
        raise PayloadError("ENCODING", "HJ 212 packets are ASCII; no encoding can be configured")
    return decode_hj212(data, limits=limits)


def encode_hj212(fields: Mapping[str, Any]) -> str:
    """A valid packet (with length, CRC and CRLF) from a tree shaped like ``decode_hj212``'s.

    Head keys in the standard's order; CP holds ``DataTime`` first, then the other ``params``
    (one group each), then one group per factor. ``raw`` is ignored. Raises ``ValueError`` for a
    missing head key, a value containing ``; , = &`` or a segment longer than 9999 bytes.
    """
    head = []
    for key in _HEAD_ORDER:
        if key in fields:
            head.append(f"{key}={_field_text(key, fields[key])}")
        elif key in _REQUIRED:
            raise ValueError(f"HJ 212 head field {key} is required")
    params: dict[str, Any] = dict(fields.get("params") or {})
    if "DataTime" in fields:
        params = {"DataTime": fields["DataTime"], **{k: v for k, v in params.items() if k != "DataTime"}}
    groups = [f"{key}={_field_text(key, value)}" for key, value in params.items()]
    for factor in fields.get("factors") or ():
        code = _field_text("code", factor["code"])
        items = [
            f"{code}-{name}={_field_text(name, value)}" for name, value in factor.items() if name != "code"
        ]
        groups.append(",".join(items))
    segment = ";".join(head) + _CP_OPEN + ";".join(groups) + "&&"
    encoded = segment.encode("ascii")
    if len(encoded) > _MAX_SEGMENT_BYTES:
        raise ValueError(f"HJ 212 data segment is {len(encoded)} bytes, more than {_MAX_SEGMENT_BYTES}")
    return f"##{len(encoded):04d}{segment}{crc16(encoded):04X}\r\n"


def _field_text(key: str, value: Any) -> str:
    text = str(value)
    if _FORBIDDEN_IN_VALUES.search(text) or not text.isascii():
        raise ValueError(f"HJ 212 value of {key} must be ASCII without ; , = & or line ends: {text!r}")
    return text


def _unframe(packet: bytes) -> bytes:
    if not packet.startswith(b"##") or len(packet) < 10:
        raise _error("MALFORMED", "the packet does not start with ## and a length（报文头缺少 ## 或长度）")
    length_field = packet[2:6]
    if not length_field.isdigit():
        raise _error("LENGTH", f"the length field {length_field!r} is not 4 digits（长度字段无效）")
    segment, crc_field = packet[6:-4], packet[-4:]
    if len(segment) != int(length_field):
        raise _error(
            "LENGTH",
            f"the length field says {int(length_field)} bytes, the data segment has {len(segment)}"
            f"（长度字段 {int(length_field)} 与数据段长度 {len(segment)} 不符）",
        )
    expected = f"{crc16(segment):04X}"
    stated = crc_field.decode("ascii", "replace")
    if stated.upper() != expected:
        raise _error("CRC", f"CRC mismatch: the packet says {stated}, the data gives {expected}（CRC 错误）")
    return segment


def _split_segment(text: str) -> tuple[str, str]:
    head, sep, cp = text.partition(_CP_OPEN)
    if not sep:
        raise _error("MALFORMED", "the data segment has no CP=&&...&&（数据段缺少 CP=&&…&&）")
    if not cp.endswith("&&") or len(cp) < 2:
        raise _error("MALFORMED", "CP is not terminated by &&（CP 未以 && 结束）", "CP")
    return head, cp[:-2]


def _parse_head(head_text: str) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for item in filter(None, head_text.split(";")):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise _error("MALFORMED", f"head item {item!r} is not key=value（数据段字段格式错误）")
        if key in tree or key in _RESERVED:
            raise _error("MALFORMED", f"head field {key} is repeated or reserved（字段 {key} 重复或不允许）")
        tree[key] = MASK if key == "PW" else value
    missing = [key for key in _REQUIRED if key not in tree]
    if missing:
        raise _error(
            "MALFORMED", f"head fields missing: {', '.join(missing)}（缺少字段 {'、'.join(missing)}）"
        )
    return tree


def _parse_cp(cp_text: str) -> tuple[list[dict[str, str]], dict[str, str]]:
    factors: dict[str, dict[str, str]] = {}
    params: dict[str, str] = {}
    for group in cp_text.split(";"):
        for item in filter(None, group.split(",")):
            key, sep, value = item.partition("=")
            if not sep or not key:
                raise _error("MALFORMED", f"CP item {item!r} is not key=value（CP 字段格式错误）", "CP")
            match = _FACTOR_KEY.fullmatch(key)
            target = factors.setdefault(match[1], {"code": match[1]}) if match else params
            name = match[2] if match else key
            if name in target:
                raise _error("MALFORMED", f"CP key {key} is repeated（CP 字段 {key} 重复）", "CP")
            target[name] = value
    return list(factors.values()), params


def mask_password(packet: bytes) -> bytes:
    """The packet as received with its passwords (``PW``, ``NewPW``) masked: what may be kept of a
    packet that could not be decoded (a CRC or length failure), for the rejections ledger."""
    return _PASSWORDS.sub(lambda m: m.group(1) + MASK.encode("ascii"), packet)


def _masked_packet(head_text: str, cp_text: str) -> str:
    head = ";".join(f"PW={MASK}" if item.startswith("PW=") else item for item in head_text.split(";"))
    cp = ";".join(",".join(_mask_cp_item(item) for item in group.split(",")) for group in cp_text.split(";"))
    segment = f"{head}{_CP_OPEN}{cp}&&"
    return f"##{len(segment):04d}{segment}{crc16(segment.encode('ascii')):04X}"


def _mask_cp_item(item: str) -> str:
    key, sep, _ = item.partition("=")
    return f"{key}={MASK}" if sep and key in _SECRET_PARAMS else item


def _error(code: str, message: str, location: str | None = None) -> PayloadError:
    return PayloadError(code, message, location=location)
