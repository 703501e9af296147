"""A 12345 platform that pushes work orders the way hotline-12345/README.md says it does.

Written from the contract and tools/signing.py, not from our connector: compact UTF-8 JSON body,
``X-12345-*`` headers, signature = lower-case hex HMAC-SHA256(secret, timestamp + "\\n" + body).
Fault injection: another secret, a given (stale) timestamp, a reused delivery id, raw bytes
(``send_raw`` sends a sample ``.http`` message exactly as recorded).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from typing import Any

import httpx

APP_ID = "hz12345"
TEST_SECRET = "hz12345-test-secret-2025"
PATH = "/ingest/hotline-12345"


def platform_signature(secret: str, timestamp: str, body: bytes) -> str:
    return hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"\n" + body, hashlib.sha256).hexdigest()


def order_body(order: dict[str, Any]) -> bytes:
    return json.dumps(order, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def split_http(raw: bytes) -> tuple[str, dict[str, str], bytes]:
    """Start line, headers (names as written) and body of a recorded CRLF HTTP message."""
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("utf-8").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip()] = value.strip()
    return lines[0], headers, body


class Hotline12345Client:
    def __init__(self, client: httpx.AsyncClient, *, path: str = PATH, secret: str = TEST_SECRET,
                 app_id: str = APP_ID) -> None:
        self.client, self.path, self.secret, self.app_id = client, path, secret, app_id

    def signed_headers(self, body: bytes, *, timestamp: str, delivery_id: str,
                       secret: str | None = None) -> dict[str, str]:
        return {
            "Content-Type": "application/json; charset=utf-8",
            "X-12345-App-Id": self.app_id,
            "X-12345-Timestamp": timestamp,
            "X-12345-Delivery-Id": delivery_id,
            "X-12345-Signature": platform_signature(secret or self.secret, timestamp, body),
        }

    async def push(self, order: dict[str, Any], *, delivery_id: str | None = None, timestamp: int | None = None,
                   secret: str | None = None) -> httpx.Response:
        """Sign and push one work order now (or at ``timestamp``); a retry reuses ``delivery_id``."""
        body = order_body(order)
        return await self.push_bytes(body, delivery_id=delivery_id or str(uuid.uuid4()),
                                     timestamp=str(int(time.time()) if timestamp is None else timestamp),
                                     secret=secret)

    async def push_bytes(self, body: bytes, *, delivery_id: str, timestamp: str,
                         secret: str | None = None) -> httpx.Response:
        headers = self.signed_headers(body, timestamp=timestamp, delivery_id=delivery_id, secret=secret)
        return await self.client.post(self.path, content=body, headers=headers)

    async def send_raw(self, raw: bytes) -> httpx.Response:
        """Send a recorded request (start line and Host aside) with its headers and body unchanged."""
        _start, headers, body = split_http(raw)
        headers.pop("Host", None)
        headers.pop("Content-Length", None)
        return await self.client.post(self.path, content=body, headers=headers)
