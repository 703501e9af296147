"""SOAP 1.1 (and 1.2) envelopes -> the XML tree of the first child of ``Body``; a Fault raises.

``parse_fault`` gives a connector the fault's parts, so it can map the service's ``errorCode``
(``detail/ServiceFault/errorCode`` in the ministry contract) to transient or permanent.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from gateway.errors import PayloadError

from .limits import DecodeLimits
from .xml_codec import TEXT_KEY, parse_xml


@dataclass(frozen=True, slots=True)
class SoapFault:
    """The parts of a SOAP Fault; ``error_code``/``error_message`` come from the ``detail``."""

    faultcode: str
    faultstring: str
    error_code: str | None = None
    error_message: str | None = None

    def describe(self) -> str:
        text = f"SOAP Fault {self.faultcode}: {self.faultstring}"
        if self.error_code is not None:
            text += f" (errorCode {self.error_code}"
            text += f": {self.error_message})" if self.error_message else ")"
        return text


class SoapFaultError(PayloadError):
    """The envelope holds a Fault (code ``SOAP_FAULT``); ``fault`` has its parts."""

    def __init__(self, fault: SoapFault) -> None:
        super().__init__(
            "SOAP_FAULT", f"{fault.describe()}（对方返回 SOAP 错误）", location="Envelope/Body/Fault"
        )
        self.fault = fault


def decode_soap(data: bytes, *, limits: DecodeLimits, encoding: str | None = None) -> Any:
    """The tree of the first child of ``Envelope/Body``; ``SoapFaultError`` for a Fault."""
    name, value = _first_body_child(data, limits, encoding)
    if name == "Fault":
        raise SoapFaultError(_fault_from(value))
    return value


def decode(data: bytes, *, limits: DecodeLimits, encoding: str | None = None) -> Any:
    return decode_soap(data, limits=limits, encoding=encoding)


def parse_fault(data: bytes, *, limits: DecodeLimits, encoding: str | None = None) -> SoapFault | None:
    """The Fault of an envelope, or None when its Body holds something else.

    A body that is not a SOAP envelope (an HTML error page from a proxy) raises ``MALFORMED``.
    """
    name, value = _first_body_child(data, limits, encoding)
    return _fault_from(value) if name == "Fault" else None


def _first_body_child(data: bytes, limits: DecodeLimits, encoding: str | None) -> tuple[str, Any]:
    root, tree = parse_xml(data, limits=limits, encoding=encoding)
    if root != "Envelope" or not isinstance(tree, dict) or not isinstance(tree.get("Body"), dict):
        raise PayloadError("MALFORMED", "not a SOAP envelope with a Body（不是有效的 SOAP 报文）")
    for name, value in tree["Body"].items():
        if not name.startswith(("@", "#")):
            return name, value[0] if isinstance(value, list) else value
    raise PayloadError("MALFORMED", "the SOAP Body is empty（SOAP Body 为空）", location="Envelope/Body")


def _fault_from(value: Any) -> SoapFault:
    node = value if isinstance(value, dict) else {}
    # SOAP 1.1: faultcode/faultstring/detail; SOAP 1.2: Code/Value, Reason/Text, Detail.
    code = _text(node.get("faultcode")) or _text(_get(node.get("Code"), "Value"))
    reason = _text(node.get("faultstring")) or _text(_get(node.get("Reason"), "Text"))
    detail = node.get("detail", node.get("Detail"))
    return SoapFault(
        faultcode=code,
        faultstring=reason,
        error_code=_find_text(detail, "errorCode"),
        error_message=_find_text(detail, "errorMsg"),
    )


def _get(node: Any, key: str) -> Any:
    return node.get(key) if isinstance(node, dict) else None


def _text(value: Any) -> str:
    if isinstance(value, list):
        value = value[0] if value else None
    if isinstance(value, dict):
        value = value.get(TEXT_KEY, "")
    return value.strip() if isinstance(value, str) else ""


def _find_text(tree: Any, key: str) -> str | None:
    for node in _walk(tree):
        if key in node:
            return _text(node[key])
    return None


def _walk(tree: Any) -> Iterator[dict[str, Any]]:
    """Dicts of the tree, breadth first (iterative: the tree's depth is bounded, but why recurse)."""
    queue = [tree]
    while queue:
        node = queue.pop(0)
        if isinstance(node, dict):
            yield node
            queue.extend(node.values())
        elif isinstance(node, list):
            queue.extend(node)
