"""Business keys in the stores: a canonical JSON form, its hash for lookups, and the PII policy.

A business key may hold personal information (``supervised_object.object_id`` of a natural person
is an ID number). The standard asks that such keys are looked up through a keyed hash and never
stored in clear, so every store indexes ``business_key_hash`` and keeps the plain key only for
kinds whose key has no PII field. Pass a ``secret`` (kept outside the database) to make the hash
an HMAC: a plain SHA-256 of an 18-digit ID number can be reversed by enumeration.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from functools import lru_cache

import orjson

from mapping.standard import load_standard, supported_versions

BusinessKey = Sequence[str | None]


def canonical_key(key: BusinessKey) -> str:
    """The key as compact JSON, non-ASCII kept: the same key always gives the same text."""
    return orjson.dumps(list(key)).decode()


def key_hash(kind: str, key: BusinessKey, secret: bytes | None = None) -> str:
    """SHA-256 (HMAC-SHA256 with ``secret``) hex of the canonical JSON of ``[kind, key]``."""
    data = orjson.dumps([kind, list(key)])
    if secret:
        return hmac.new(secret, data, hashlib.sha256).hexdigest()
    return hashlib.sha256(data).hexdigest()


def plain_key(kind: str, key: BusinessKey | None) -> str | None:
    """The key to store in clear, or None when the kind's key has a PII field (or is unknown)."""
    if key is None or kind in pii_key_kinds():
        return None
    return canonical_key(key)


def optional_hash(kind: str, key: BusinessKey | None, secret: bytes | None) -> str | None:
    return None if key is None else key_hash(kind, key, secret)


@lru_cache(maxsize=1)
def pii_key_kinds() -> frozenset[str]:
    """Kinds whose business key has a field with ``pii: true`` or ``pii: conditional``, in any
    standard version the gateway ships (conditional PII is treated as always PII, as allowed)."""
    kinds: set[str] = set()
    for version in supported_versions():
        for name, kind in load_standard(version).kinds.items():
            if any(kind.fields[f].pii for f in kind.business_key if f in kind.fields):
                kinds.add(name)
    return frozenset(kinds)
