"""XML -> the generic tree of docs/codecs.md, parsed with defusedxml (no DTD, entities or external refs).

The tree is built directly from parser events (no ElementTree kept), with a depth limit checked
as each element opens, so a hostile nesting is refused before it costs anything.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass, field
from typing import Any
from xml.etree.ElementTree import ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser

from gateway.errors import PayloadError

from .limits import DecodeLimits, check_size
from .text_encoding import TextDecoder, decode_text, resolve_codec

_DECLARED = re.compile(rb"""^<\?xml[^>]*?\bencoding\s*=\s*["']([A-Za-z][A-Za-z0-9._-]*)["']""")
_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
TEXT_KEY = "#text"
_XSI = "{http://www.w3.org/2001/XMLSchema-instance}"
_XSI_NIL = f"{_XSI}nil"


def parse_xml(data: bytes, *, limits: DecodeLimits, encoding: str | None = None) -> tuple[str, Any]:
    """``(root local name, root value)`` of an XML document; see the module docstring.

    Encoding: ``encoding`` if given, else a BOM, else the declared encoding (GB2312 and GBK decode
    as GB18030), else UTF-8 with a GBK/GB18030 fallback. Raises ``PayloadError``:
    ``PAYLOAD_TOO_LARGE``, ``ENCODING``, ``XML_FORBIDDEN`` (DTD, entity, external reference, depth
    beyond ``xml_max_depth``), ``MALFORMED`` (with line and column).
    """
    check_size(len(data), limits)
    text = _decode_document(data, encoding)
    builder = _TreeBuilder(limits.xml_max_depth)
    parser = DefusedXMLParser(target=builder, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    try:
        parser.feed(text)
        parser.close()
    except DefusedXmlException as exc:
        raise PayloadError(
            "XML_FORBIDDEN", f"the XML declares a DTD, entities or external references: {exc}"
            "（XML 含 DTD、实体或外部引用，已拒绝）",
        ) from exc
    except ParseError as exc:
        line, column = exc.position
        raise PayloadError(
            "MALFORMED", f"invalid XML: {exc}（XML 格式错误）", location=f"line {line}, column {column}"
        ) from exc
    return builder.result()


def decode_xml(data: bytes, *, limits: DecodeLimits, encoding: str | None = None) -> Any:
    return parse_xml(data, limits=limits, encoding=encoding)[1]


def decode(data: bytes, *, limits: DecodeLimits, encoding: str | None = None) -> Any:
    return decode_xml(data, limits=limits, encoding=encoding)


def _decode_document(data: bytes, encoding: str | None) -> str:
    # The parser is fed text, so it ignores the declaration; the declaration is honoured here.
    if encoding is not None:
        return decode_text(data, encoding)
    if data.startswith(_UTF16_BOMS):
        return decode_text(data, "utf-16")
    declared = _DECLARED.match(data.removeprefix(codecs.BOM_UTF8))
    if declared is None:
        return decode_text(data)
    return TextDecoder(resolve_codec(declared.group(1).decode("ascii"))).decode(data, final=True)


def local_name(tag: str) -> str:
    return tag.rpartition("}")[2]


@dataclass(slots=True)
class _Frame:
    name: str
    attrs: dict[str, str]
    children: dict[str, Any] = field(default_factory=dict)
    text: list[str] = field(default_factory=list)
    nil: bool = False

    def value(self) -> Any:
        text = "".join(self.text)
        if not self.children and not self.attrs:
            return text
        node: dict[str, Any] = {f"@{name}": value for name, value in self.attrs.items()}
        node.update(self.children)
        if text.strip() or (not self.children and text):
            node[TEXT_KEY] = text
        return node

    def add(self, name: str, value: Any) -> None:
        if name not in self.children:
            self.children[name] = value
            return
        existing = self.children[name]
        # An element's own value is a str or a dict, never a list: a list means "repeated".
        if isinstance(existing, list):
            existing.append(value)
        else:
            self.children[name] = [existing, value]


class _TreeBuilder:
    """Target for the expat-based parser: builds the generic tree with a depth limit."""

    def __init__(self, max_depth: int) -> None:
        self._max_depth = max_depth
        self._stack: list[_Frame] = []
        self._root: tuple[str, Any] | None = None

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        if len(self._stack) >= self._max_depth:
            raise PayloadError(
                "XML_FORBIDDEN", f"elements nested deeper than {self._max_depth}（XML 嵌套层级过深）"
            )
        # XML Schema instance attributes describe the element, they are not data: xsi:nil="true" is
        # an element that is absent (a JAX-WS stack's unset optional element), xsi:type is dropped.
        attrs = {local_name(name): value for name, value in attrib.items() if not name.startswith(_XSI)}
        nil = attrib.get(_XSI_NIL, "").strip() in ("true", "1")
        self._stack.append(_Frame(local_name(tag), attrs, nil=nil))

    def data(self, text: str) -> None:
        self._stack[-1].text.append(text)

    def end(self, tag: str) -> None:
        frame = self._stack.pop()
        if frame.nil and self._stack:
            return  # absent
        value = frame.value()
        if self._stack:
            self._stack[-1].add(frame.name, value)
        else:
            self._root = (frame.name, value)

    def close(self) -> None:
        return None

    def result(self) -> tuple[str, Any]:
        if self._root is None:
            raise PayloadError("MALFORMED", "the XML has no root element（XML 缺少根元素）")
        return self._root
