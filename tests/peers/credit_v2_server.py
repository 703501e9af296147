"""The provincial credit platform's 双公示 v2 JSON listing (shared/sources/credit-publication/README.md
part (a)) over a real socket: ``GET /sgs/api/v2/{xk|cf}?startTime=&pageNum=&pageSize=`` with
``X-Api-Key``; errors are ``code`` ≠ "200" in an HTTP 200 body. Rows come from the contract's samples."""

from __future__ import annotations

import copy
import json
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web

from tests.conftest import SAMPLES
from tests.peers.base import PeerServer, json_response

FORMAT = "%Y-%m-%d %H:%M:%S"
CLOCK_START = datetime(2025, 6, 21, 8, 0, 0)
DOC_NO = {"xk": "XK_WSH", "cf": "CF_WSH"}


def templates(item: str) -> list[dict[str, Any]]:
    name = f"inbound-v2-{item}-page.json"
    rows: list[dict[str, Any]] = json.loads((SAMPLES / "credit-publication" / name).read_text(encoding="utf-8"))["rows"]
    return rows


def make_row(item: str, n: int) -> dict[str, Any]:
    pool = [r for r in templates(item) if r.get("SJZT") == "1"]
    row = copy.deepcopy(pool[n % len(pool)])
    row["ID"] = f"{item.upper()}T{n:08d}"
    row[DOC_NO[item]] = f"测试〔2025〕{item}{n}号"
    return row


class CreditV2Server(PeerServer):
    def __init__(self, *, api_key: str = "sgw-credit-key") -> None:
        self.api_key = api_key
        self.rows: dict[str, dict[str, dict[str, Any]]] = {"xk": {}, "cf": {}}
        self._tick = 0
        super().__init__()

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/sgs/api/v2/{item:xk|cf}", self.listing)

    def add(self, item: str, count: int) -> list[str]:
        table = self.rows[item]
        ids = []
        for n in range(len(table), len(table) + count):
            self._tick += 1
            row = make_row(item, n)
            row["GXSJ"] = (CLOCK_START + timedelta(seconds=self._tick)).strftime(FORMAT)
            table[row["ID"]] = row
            ids.append(row["ID"])
        return ids

    def fail_body(self, item: str, code: str, times: int = 1) -> None:
        """An error the platform's way: HTTP 200 with a non-"200" code."""
        self.fail(f"/sgs/api/v2/{item}", 200, times, body={"code": code, "message": "fault injected"})

    async def listing(self, request: web.Request) -> web.Response:
        if request.headers.get("X-Api-Key") != self.api_key:
            return json_response({"code": "401", "message": "API Key无效"})
        q = request.query
        try:
            since = datetime.strptime(q["startTime"], FORMAT)
            page, size = int(q.get("pageNum", "1")), int(q.get("pageSize", "100"))
        except (KeyError, ValueError):
            return json_response({"code": "400", "message": "参数错误"})
        if page < 1 or not 1 <= size <= 500:
            return json_response({"code": "400", "message": "参数错误"})
        matching = sorted((r for r in self.rows[request.match_info["item"]].values()
                           if datetime.strptime(r["GXSJ"], FORMAT) >= since), key=lambda r: (r["GXSJ"], r["ID"]))
        return json_response({"code": "200", "message": "成功", "total": len(matching), "pageNum": page,
                              "pageSize": size, "rows": matching[(page - 1) * size: page * size]})
