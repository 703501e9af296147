"""A fake national 互联网+监管 platform speaking ``sources/national-platform/`` over HTTP.

It checks the signature (both methods, clock skew, nonce reuse, app id), the record and byte limits
(413), the schema basics (400), replays by batch_id (409 40900 / 40901), answers per record, and
records what it received and stored so tests can count exactly-once delivery. Faults: see
``tests.peers.outbound_peer.PeerServer``.

It is the delivery benchmark's peer too, sharing the machine with the gateway, so it is frugal:
one orjson parse per request, the body digest of the signature reused to recognise a replay, nonces
expired oldest first, answers encoded by orjson.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import sys
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from adapters.national_platform.sm3 import sm3_constructor
from tests.peers.outbound_peer import PeerServer

PATH = "/api/v1/records:batch"
APP_ID = "zj330000sgw"
APP_SECRET = "nat-test-secret-0001"
MAX_BODY_BYTES = 5_242_880
NONCE_WINDOW_S = 600
METHODS = ("HMAC-SM3", "HMAC-SHA256")


@dataclass(frozen=True)
class Received:
    status: int
    batch_id: str | None
    record_ids: tuple[str, ...]
    size_bytes: int


def _hash(method: str) -> Any:
    # Independent of the adapter's signing module: OpenSSL's SM3 when present.
    if method == "HMAC-SM3":
        return (lambda d=b"": hashlib.new("sm3", d)) if "sm3" in hashlib.algorithms_available else sm3_constructor()
    return hashlib.sha256


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, headers=headers, content_type="application/json",
                        charset="utf-8")


def _error(status: int, code: str, message: str, retry_after_s: int | None = None, **extra: Any) -> web.Response:
    headers = {"Retry-After": str(retry_after_s)} if retry_after_s is not None else None
    return _json({"code": code, "message": message, **extra}, status=status, headers=headers)


def _digest(method: str, raw: bytes) -> str:
    return str(_hash(method)(raw).hexdigest())


@dataclass(frozen=True)
class _Batch:
    """A batch the platform holds: the body's digest (by the method it was signed with) and the answer."""

    method: str
    digest: str
    answer: dict[str, Any]

    def same_body(self, method: str, digest: str, raw: bytes) -> bool:
        return digest == self.digest if method == self.method else _digest(self.method, raw) == self.digest


class NationalPlatformServer(PeerServer):
    def __init__(self, *, app_id: str = APP_ID, secret: str = APP_SECRET, max_records: int = 500,
                 max_bytes: int = MAX_BODY_BYTES, nonce_window_s: float = NONCE_WINDOW_S) -> None:
        super().__init__(client_max_size=max_bytes + 1_048_576)
        self.app_id, self.secret = app_id, secret
        self.max_records, self.max_bytes = max_records, max_bytes
        self.nonce_window_s = nonce_window_s
        self.received: list[Received] = []
        self.stored: dict[str, int] = {}           # record_id -> times stored (exactly once: 1)
        self._batches: dict[str, _Batch] = {}
        self._nonces: OrderedDict[str, float] = OrderedDict()  # nonce -> when first seen, oldest first
        self._stale_next = 0
        self.poisoned: set[str] = set()  # records that make the whole batch fail the schema (400)

    def routes(self, app: web.Application) -> None:
        app.router.add_post(PATH, self._handle)
        app.router.add_get("/_peer/stored", self._stored)  # the fake's own: what it holds, for the benchmark

    async def _stored(self, _request: web.Request) -> web.Response:
        return web.json_response({"records": len(self.stored),
                                  "stored_twice": sum(1 for n in self.stored.values() if n > 1)})

    async def _handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        response, batch_id, ids = await self._answer(request, raw)
        self.received.append(Received(response.status, batch_id, ids, len(raw)))
        return response

    async def _answer(self, request: web.Request, raw: bytes) -> tuple[web.Response, str | None, tuple[str, ...]]:
        fault = await self.transport_fault()
        if fault is not None:
            status, retry = fault
            code = {503: "50300", 429: "42900"}.get(status, f"{status}00")
            return _error(status, code, "注入的故障 / injected fault", retry), None, ()
        signed = self._check_signature(request, raw)
        if isinstance(signed, web.Response):
            return signed, None, ()
        method, digest = signed
        if len(raw) > self.max_bytes:
            return _error(413, "41300", "批次超过限制：最多500条记录、5MB"), None, ()
        try:
            body = orjson.loads(raw)
            batch_id, records = str(body["batch_id"]), list(body["records"])
            ids = tuple([str(r["record_id"]) for r in records])
        except (ValueError, KeyError, TypeError):
            return _error(400, "40000", "报文结构校验失败", errors=[{"path": "$", "message": "无法解析"}]), None, ()
        if len(records) > self.max_records:
            return _error(413, "41300", "批次超过限制：最多500条记录、5MB", batch_id=batch_id), batch_id, ids
        bad = [i for i, rid in enumerate(ids) if rid in self.poisoned] if self.poisoned else []
        if bad:  # the contract's 400: the whole batch refused for one record's schema, nothing stored
            return _error(400, "40000", "报文结构校验失败", batch_id=batch_id, errors=[
                {"path": f"$.records[{i}]", "message": "记录不符合报文结构"} for i in bad]), batch_id, ids
        first = self._batches.get(batch_id)
        if first is not None:
            if not first.same_body(method, digest, raw):
                return _error(409, "40901", "batch_id已被使用且报文内容不同", batch_id=batch_id), batch_id, ids
            replay = {**first.answer, "code": "40900", "message": "batch_id已处理，返回首次处理结果"}
            return _json(replay, status=409), batch_id, ids
        answer = self._process(batch_id, ids)
        self._batches[batch_id] = _Batch(method, digest, answer)
        if self.answer_lost():
            return _error(502, "50200", "注入的故障：应答丢失 / injected: answer lost"), batch_id, ids
        return _json(answer), batch_id, ids

    def _process(self, batch_id: str, ids: tuple[str, ...]) -> dict[str, Any]:
        results = []
        rejected = self.faults.rejected
        stored = self.stored
        for rid in ids:
            found = rejected.get(rid) if rejected else None
            if found is None:
                stored[rid] = stored.get(rid, 0) + 1
                results.append({"record_id": rid, "status": "accepted", "code": "00000", "message": "接收成功"})
            else:
                code, message, field = found
                results.append({"record_id": rid, "status": "rejected", "code": code, "message": message,
                                **({"field": field} if field else {})})
        accepted = sum(1 for r in results if r["status"] == "accepted")
        return {"batch_id": batch_id, "received_at": time.strftime("%Y-%m-%dT%H:%M:%S+08:00"),
                "accepted": accepted, "rejected": len(results) - accepted, "results": results}

    def _check_signature(self, request: web.Request, raw: bytes) -> web.Response | tuple[str, str]:
        """A refusal, or the signature method and the body's digest by it (what a replay is compared by)."""
        h = request.headers
        app_id, stamp, nonce = h.get("X-App-Id", ""), h.get("X-Timestamp", ""), h.get("X-Nonce", "")
        method, signature = h.get("X-Signature-Method", ""), h.get("X-Signature", "")
        if app_id != self.app_id:
            return _error(401, "40103", "未知或已停用的应用")
        stale = self._stale_next > 0
        self._stale_next -= 1 if stale else 0
        if stale or not stamp.isdigit() or len(stamp) != 13 or abs(int(stamp) / 1000 - time.time()) > 300:
            return _error(401, "40101", "时间戳超出允许范围")
        if method not in METHODS:
            return _error(401, "40100", "签名校验失败")
        digest = _digest(method, raw)
        canonical = "\n".join(["POST", PATH, app_id, stamp, nonce, digest])
        expected = hmac.new(self.secret.encode(), canonical.encode(), _hash(method)).hexdigest()
        if not hmac.compare_digest(expected, signature):
            return _error(401, "40100", "签名校验失败")
        if not self._first_use(nonce):
            return _error(401, "40102", "随机数重复使用")
        return method, digest

    def _first_use(self, nonce: str) -> bool:
        """Whether the nonce is new within the window; remembered if so (expired ones forgotten first)."""
        now = time.monotonic()
        nonces = self._nonces
        while nonces:
            oldest, seen = next(iter(nonces.items()))
            if now - seen < self.nonce_window_s:
                break
            del nonces[oldest]
        if nonce in nonces:
            return False
        nonces[nonce] = now
        return True

    # -- what tests look at -----------------------------------------------------------------------

    def statuses(self) -> list[int]:
        return [r.status for r in self.received]

    def poison(self, record_id: str) -> None:
        """Refuse every batch holding this record with 400 40000 (the record fails the schema)."""
        self.poisoned.add(record_id)

    def cure(self, record_id: str) -> None:
        """The fix is in (the platform's schema or the record): the record is taken again."""
        self.poisoned.discard(record_id)

    def refuse_timestamp(self, times: int) -> None:
        """Answer the next ``times`` signed requests 401 40101 (our clock too far off)."""
        self._stale_next = times


async def _serve(port: int) -> None:
    server = NationalPlatformServer()
    app = web.Application(client_max_size=server.max_bytes + 1_048_576)
    server.routes(app)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    print(f"http://127.0.0.1:{port}", flush=True)
    await asyncio.Event().wait()


def main() -> None:
    """``python -m tests.peers.national_platform_server PORT``: the fake in a process of its own."""
    asyncio.run(_serve(int(sys.argv[1])))


if __name__ == "__main__":
    main()
