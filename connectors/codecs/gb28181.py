"""GB/T 28181 SIP MESSAGE bodies (``<Notify>``) -> the XML tree of the root.

Devices declare ``encoding="GB2312"`` but write GBK characters; the XML codec decodes the whole
GB family as GB18030, and an undeclared non-UTF-8 body as GB18030 too.
"""

from __future__ import annotations

from typing import Any

from gateway.errors import PayloadError

from .limits import DecodeLimits
from .xml_codec import parse_xml


def decode_gb28181(data: bytes, *, limits: DecodeLimits, encoding: str | None = None) -> Any:
    root, tree = parse_xml(data, limits=limits, encoding=encoding)
    if root != "Notify":
        raise PayloadError(
            "MALFORMED", f"expected a GB/T 28181 <Notify>, got <{root}>（不是 GB/T 28181 通知报文）"
        )
    return tree


def decode(data: bytes, *, limits: DecodeLimits, encoding: str | None = None) -> Any:
    return decode_gb28181(data, limits=limits, encoding=encoding)
