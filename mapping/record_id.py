"""Business keys and deterministic record ids.

``record_id`` is the UUIDv5 (lower-case 8-4-4-4-12) of one *version* of a record, under the fixed
namespace ``RECORD_ID_NAMESPACE`` = uuid5(NAMESPACE_URL, "urn:sgw:record-id:v1"). Its name is the
compact JSON array ``[record_kind, [business key parts...], sha256 hex of the canonical content]``
(a JSON array, so a ``|`` inside a key part cannot make two keys collide).

The canonical content is the record as mapped, without the fields the gateway fills on receipt
(``record_id``, ``received_at``, ``connector``, ``standard_version``), without ``submitted_at``
(when a version was sent, not what it says: a source without a submission time gets the time the
connector read it, and the standard makes re-sending identical content a no-op) and without
absent values (null, "", []), serialised by orjson with sorted keys. So a re-sent identical copy
(MQTT redelivery, poll overlap, a re-dropped file, another connector) gets the same id whenever it
arrives, and any change of source data, ``operation`` included, gives a new id. Changing this
recipe changes every id: treat it as a stored format.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from decimal import Decimal
from itertools import filterfalse
from typing import Any

import orjson

from gateway.errors import MappingError
from mapping.identifiers import normalise_identifier
from mapping.standard import KindSpec

RECORD_ID_NAMESPACE = uuid.UUID("e4a0bd7e-afc8-5752-8353-4d285202ff86")
"""uuid5(NAMESPACE_URL, "urn:sgw:record-id:v1"); fixed forever."""
_NAMESPACE_BYTES = RECORD_ID_NAMESPACE.bytes

GATEWAY_FILLED_FIELDS: frozenset[str] = frozenset(
    {"record_id", "received_at", "connector", "standard_version"}
)
"""Set by the gateway on receipt; they differ between copies of the same version, so not hashed."""

UNHASHED_FIELDS: frozenset[str] = GATEWAY_FILLED_FIELDS | {"submitted_at"}
"""Left out of the content digest: the gateway's fields, and when the version was submitted."""
_UNHASHED = tuple(UNHASHED_FIELDS)


def business_key(kind: KindSpec, record: Mapping[str, Any]) -> tuple[str, ...]:
    """The canonical business key: identifiers NFKC/no whitespace/upper-case, strings trimmed.

    An absent part is ``""`` (validation reports it as REQUIRED). The key may hold PII (a natural
    person's ID number): stores must index it through a keyed hash, never in clear.
    """
    parts: list[str] = []
    for name in kind.business_key:
        value = record.get(name)
        spec = kind.fields.get(name)
        if isinstance(value, str):
            parts.append(normalise_identifier(value) if spec and spec.identifier else value.strip())
        elif value is None:
            parts.append("")
        elif isinstance(value, bool):
            parts.append("true" if value else "false")
        elif isinstance(value, int | Decimal):
            parts.append(str(value))
        else:
            parts.append(_dumps(value).decode())
    return tuple(parts)


def canonical_content(record: Mapping[str, Any]) -> bytes:
    """The bytes the content digest is computed over (see the module docstring)."""
    copied: dict[str, Any] | None = None
    for name in _UNHASHED:  # five lookups: cheaper than a set operation over every key
        if name in record:
            if copied is None:  # a C-level copy and a few deletions, only when one is there
                copied = dict(record)
            del copied[name]
    content = record if copied is None else copied
    # Absent values are not content. Each of None, "" and [] is falsy, and a record's values are
    # JSON values, so only its falsy values (a few False at most, usually) need looking at;
    # filterfalse picks them in C. When they all equal False (None, "" and [] do not), nothing
    # is absent: ``count`` compares them by identity first, where ``in`` would try str and list
    # equality on each.
    falsy = list(filterfalse(None, content.values()))
    if falsy and falsy.count(False) != len(falsy) and (None in falsy or "" in falsy or [] in falsy):
        content = {k: v for k, v in content.items() if not (v is None or v == "" or v == [])}
    return _dumps(content)


def content_digest(record: Mapping[str, Any]) -> str:
    """sha256 hex of the canonical content: equal for identical versions."""
    return _sha256(canonical_content(record)).hexdigest()


def record_id(kind_name: str, business_key: tuple[str, ...], record: Mapping[str, Any]) -> str:
    """The deterministic id of this version of the record."""
    # A tuple is a JSON array to orjson, as the list it used to be (the same bytes); the name
    # holds texts only, so neither sorting nor ``default`` applies.
    name = _dumps_name((kind_name, business_key, content_digest(record)))
    # uuid.uuid5 by hand (same text, same result), a few microseconds cheaper per record: the
    # first 16 bytes of the SHA-1 in hex, with the version nibble set to 5 and the two top bits of
    # the variant's nibble to 10.
    sha1 = _NAMESPACE_SHA1.copy()  # the namespace hashed once: a copy costs less than a new hash
    sha1.update(name)
    h = sha1.hexdigest()
    return f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{_RFC4122_VARIANT[h[16]]}{h[17:20]}-{h[20:32]}"


_NAMESPACE_SHA1 = hashlib.sha1(_NAMESPACE_BYTES, usedforsecurity=False)  # never updated: copied
_sha256 = hashlib.sha256
_RFC4122_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}


def _dumps_name(name: tuple[str, tuple[str, ...], str]) -> bytes:
    kind_name, key, digest = name
    if type(kind_name) is not str:
        return _dumps([kind_name, list(key), digest])
    for part in key:  # a plain loop: all() over a generator costs more than the dumps
        if type(part) is not str:
            return _dumps([kind_name, list(key), digest])
    return orjson.dumps(name)


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, tuple | frozenset | set):
        return sorted(value, key=str) if not isinstance(value, tuple) else list(value)
    raise TypeError(f"type {type(value).__name__} is not JSON")


def _dumps(value: Any) -> bytes:
    try:
        return orjson.dumps(value, default=_default, option=orjson.OPT_SORT_KEYS)
    except TypeError as exc:  # orjson.JSONEncodeError is a TypeError
        raise MappingError(f"record is not JSON-serialisable: {exc}") from exc
