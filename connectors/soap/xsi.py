"""XML Schema instance attributes in a decoded page: ``xsi:nil`` means absent, ``xsi:type`` is dropped.

The contract's schema declares no attributes, so on the wire an attribute of a record element can
only be an instance attribute a JAX-WS stack adds: ``<QYDZ xsi:nil="true"/>`` for an unset optional
element, ``<JCNR xsi:type="xs:string">…</JCNR>``. The codec keeps attributes (``{"@nil": "true"}``),
which a mapping would refuse as a value; here they become what the schema means.
"""

from __future__ import annotations

from typing import Any

from connectors.codecs.xml_codec import TEXT_KEY

_NIL = "@nil"
_INSTANCE_ATTRIBUTES = frozenset({_NIL, "@type"})
XSI_NAMESPACE = b"http://www.w3.org/2001/XMLSchema-instance"
"""A document without this namespace has no instance attributes: nothing to resolve."""


def resolve_instance_attributes(tree: Any) -> Any:
    """``tree`` with nil elements removed and ``xsi:type`` dropped (None when the tree itself is nil)."""
    if isinstance(tree, list):
        items = (resolve_instance_attributes(item) for item in tree)
        return [item for item in items if item is not None]
    if not isinstance(tree, dict):
        return tree
    if _is_nil(tree):
        return None
    out: dict[str, Any] = {}
    for name, value in tree.items():
        if name in _INSTANCE_ATTRIBUTES:
            continue
        resolved = resolve_instance_attributes(value)
        if resolved is not None:
            out[name] = resolved
    if tree.keys() & _INSTANCE_ATTRIBUTES and set(out) <= {TEXT_KEY}:
        return out.get(TEXT_KEY, "")  # a leaf that only carried xsi attributes: its text
    return out


def _is_nil(node: dict[str, Any]) -> bool:
    value = node.get(_NIL)
    return isinstance(value, str) and value.strip() in ("true", "1")
