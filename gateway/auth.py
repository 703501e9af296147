"""Department API keys: random, shown once, stored as SHA-256 digests, compared in constant time."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable

KEY_PREFIX = "sgw_"


def hash_api_key(key: str) -> str:
    return "sha256:" + hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_api_key() -> tuple[str, str]:
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    return key, hash_api_key(key)


def key_matches(key: str, digests: Iterable[str]) -> bool:
    candidate = hash_api_key(key)
    return any(hmac.compare_digest(candidate, digest) for digest in digests)
