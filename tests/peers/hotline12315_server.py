"""The 全国12315平台 case API (shared/sources/hotline-12315/README.md) over a real socket.

Token by appKey/appSecret (``X-Access-Token``, expiring), ``GET /api/v1/cases`` by region prefix and
``modifiedSince`` with page numbers, the contract's ``{"code", "msg", "data"}`` bodies. Cases are
generated from the contract's samples (personal data included, to prove it never reaches a log).
"""

from __future__ import annotations

import copy
import json
import math
import secrets
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from tests.conftest import SAMPLES
from tests.peers.base import PeerServer, json_response

PATH = "/api/v1/cases"
FORMAT = "%Y-%m-%d %H:%M:%S"
# Case times start ten days before the test runs, at 08:00 Beijing time: the contract lets
# modifiedSince go back 31 days at most (answered 40001 beyond), so the cases must be recent.
CLOCK_START = (datetime.now(UTC) + timedelta(hours=8)).replace(tzinfo=None, hour=8, minute=0, second=0,
                                                                microsecond=0) - timedelta(days=10)
MAX_SINCE_AGE = timedelta(days=31)


def templates() -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = []
    for name in ("cases-page-1.json", "cases-page-2.json"):
        cases.extend(json.loads((SAMPLES / "hotline-12315" / name).read_text(encoding="utf-8"))["data"]["list"])
    return cases


def make_case(n: int) -> dict[str, Any]:
    case = copy.deepcopy(templates()[n % 3])
    case["caseNo"] = case["caseNo"][:15] + f"{n:04d}"
    return case


def _body(code: int, msg: str, data: Any = None, status: int = 200) -> web.Response:
    return json_response({"code": code, "msg": msg, "data": data}, status)


class Hotline12315Server(PeerServer):
    def __init__(self, *, app_key: str = "sgw-app", app_secret: str = "app-s3cret", expires_in: int = 7200) -> None:
        self.app_key = app_key
        self.app_secret = app_secret
        self.expires_in = expires_in
        self.tokens: dict[str, float] = {}
        self.token_requests = 0
        self.cases: dict[str, dict[str, Any]] = {}
        self._tick = 0
        super().__init__()

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/api/v1/auth/token", self.token)
        app.router.add_get(PATH, self.list_cases)

    def _now(self) -> str:
        self._tick += 1
        return (CLOCK_START + timedelta(seconds=self._tick)).strftime(FORMAT)

    def add(self, count: int) -> list[str]:
        start = len(self.cases)
        numbers = []
        for n in range(start, start + count):
            case = make_case(n)
            case["modifiedTime"] = self._now()
            self.cases[case["caseNo"]] = case
            numbers.append(case["caseNo"])
        return numbers

    def update(self, case_no: str, **changes: Any) -> None:
        self.cases[case_no] = {**self.cases[case_no], **changes, "modifiedTime": self._now()}

    def expire_tokens(self) -> None:
        self.tokens.clear()

    async def token(self, request: web.Request) -> web.Response:
        self.token_requests += 1
        body = await request.json()
        if body.get("appKey") != self.app_key or body.get("appSecret") != self.app_secret:
            return _body(40102, "appKey或appSecret错误", status=401)
        token = secrets.token_hex(16)
        self.tokens[token] = time.monotonic() + self.expires_in
        return _body(0, "success", {"token": token, "expiresIn": self.expires_in})

    async def list_cases(self, request: web.Request) -> web.Response:
        if self.tokens.get(request.headers.get("X-Access-Token", ""), 0) <= time.monotonic():
            return _body(40101, "token已过期，请重新获取", status=401)
        q = request.query
        try:
            region = q["region"]
            since = datetime.strptime(q["modifiedSince"], FORMAT)
            page = int(q.get("page", "1"))
            size = int(q.get("pageSize", "50"))
        except (KeyError, ValueError):
            return _body(40001, "参数错误", status=400)
        if page < 1 or not 1 <= size <= 100 or len(region) not in (2, 4, 6):
            return _body(40001, "参数错误", status=400)
        if since < datetime.now(UTC).replace(tzinfo=None) + timedelta(hours=8) - MAX_SINCE_AGE:
            return _body(40001, "参数错误：modifiedSince 不得早于 31 天前", status=400)
        matching = sorted((c for c in self.cases.values() if c["regionCode"].startswith(region)
                           and datetime.strptime(c["modifiedTime"], FORMAT) >= since),
                          key=lambda c: (c["modifiedTime"], c["caseNo"]))
        rows = matching[(page - 1) * size: page * size]
        data = {"total": len(matching), "page": page, "pageSize": size,
                "pages": math.ceil(len(matching) / size), "list": rows}
        return _body(0, "success", data)
