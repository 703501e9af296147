"""The national platform's request signature (``sources/national-platform/README.md`` §Signature).

canonical = "POST\\n{path}\\n{X-App-Id}\\n{X-Timestamp}\\n{X-Nonce}\\n{hex H(body)}" (no trailing LF),
X-Signature = lower-case hex HMAC-H(app secret UTF-8, canonical UTF-8), H = SM3 for ``HMAC-SM3``
(the default) and SHA-256 for ``HMAC-SHA256`` (the per-app fallback).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from typing import Any, Literal

from adapters.national_platform.sm3 import sm3_constructor

SignatureMethod = Literal["HMAC-SM3", "HMAC-SHA256"]
BATCH_PATH = "/api/v1/records:batch"


def _hash(method: SignatureMethod) -> Callable[..., Any]:
    return sm3_constructor() if method == "HMAC-SM3" else hashlib.sha256


def body_digest(body: bytes, method: SignatureMethod) -> str:
    return str(_hash(method)(body).hexdigest())


def canonical_string(path: str, app_id: str, timestamp_ms: str, nonce: str, body: bytes,
                     method: SignatureMethod, http_method: str = "POST") -> str:
    return "\n".join([http_method.upper(), path, app_id, timestamp_ms, nonce, body_digest(body, method)])


def sign(secret: str, canonical: str, method: SignatureMethod) -> str:
    return hmac.new(secret.encode("utf-8"), canonical.encode("utf-8"), _hash(method)).hexdigest()


def new_nonce() -> str:
    return secrets.token_hex(16)


def signed_headers(*, app_id: str, secret: str, method: SignatureMethod, body: bytes, timestamp_ms: int,
                   nonce: str, path: str = BATCH_PATH) -> dict[str, str]:
    """The five signature headers of one request (a new nonce and timestamp for every attempt)."""
    stamp = str(timestamp_ms)
    signature = sign(secret, canonical_string(path, app_id, stamp, nonce, body, method), method)
    return {"X-App-Id": app_id, "X-Timestamp": stamp, "X-Nonce": nonce, "X-Signature-Method": method,
            "X-Signature": signature}
