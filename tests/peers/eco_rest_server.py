"""The 生态环境 penalty API (shared/sources/eco-rest/openapi.yaml) over a real socket.

OAuth2 client credentials with expiring tokens, a keyset cursor over (updatedAt, id) on every page,
410 CURSOR_EXPIRED for cursors of an older generation, and the contract's error bodies. Records are
generated from the contract's samples; ``update`` gives a record a new version (later updatedAt).
Ways a real deployment may answer are switches: pages in another charset or gzip-compressed, pages
without ``nextCursor``, a token lifetime as text, and raw replies queued ahead of the data.
"""

from __future__ import annotations

import base64
import copy
import json
import secrets
import time
from collections import deque
from datetime import datetime, timedelta
from typing import Any

from aiohttp import BasicAuth, web

from tests.conftest import SAMPLES
from tests.peers.base import PeerServer, json_response

PATH = "/api/v2/penalties"
CLOCK_START = datetime.fromisoformat("2025-06-11T08:00:00+08:00")


def templates() -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for name in ("penalties-page-1.json", "penalties-page-2-last.json"):
        items.extend(json.loads((SAMPLES / "eco-rest" / name).read_text(encoding="utf-8"))["items"])
    return items


def make_penalty(n: int) -> dict[str, Any]:
    item = copy.deepcopy(templates()[n % 4])
    item.update(id=f"HJCF-T-2025-{n:06d}", caseNo=f"测环罚案〔2025〕{n:04d}", decisionNo=f"测环罚〔2025〕{n}号",
                status="normal", revokeReason=None)
    return item


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return json_response({"code": code, "message": message, "traceId": secrets.token_hex(8)}, status, headers)


class EcoRestServer(PeerServer):
    def __init__(self, *, client_id: str = "sgw", client_secret: str = "s3cret", expires_in: int = 7200) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.expires_in = expires_in
        self.tokens: dict[str, float] = {}
        self.token_requests = 0
        self.records: dict[str, dict[str, Any]] = {}
        self.generation = 0
        self.expire_tokens_after_pages: int | None = None  # fault: tokens die after this many pages served
        self.page_charset = "utf-8"  # pages encoded so, and declared in Content-Type
        self.gzip_pages = False  # Content-Encoding: gzip on pages
        self.omit_next_cursor = False  # pages without nextCursor (the contract says every page has one)
        self.expires_in_as_text = False  # token lifetime as a JSON string ("7200")
        self.raw_replies: deque[web.Response] = deque()  # answered, in order, to authorized listing requests
        self._pages_served = 0
        self._tick = 0
        super().__init__()

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/oauth2/token", self.token)
        app.router.add_get(PATH, self.penalties)

    # -- data -------------------------------------------------------------------------------------

    def _now(self) -> str:
        self._tick += 1
        return (CLOCK_START + timedelta(seconds=self._tick)).isoformat()

    def add(self, count: int) -> list[str]:
        start = len(self.records)
        ids = []
        for n in range(start, start + count):
            item = make_penalty(n)
            item["createdAt"] = item["updatedAt"] = self._now()
            self.records[item["id"]] = item
            ids.append(item["id"])
        return ids

    def update(self, record_id: str, **changes: Any) -> None:
        self.records[record_id] = {**self.records[record_id], **changes, "updatedAt": self._now()}

    def expire_tokens(self) -> None:
        self.tokens.clear()

    def expire_cursors(self) -> None:
        self.generation += 1

    # -- handlers ---------------------------------------------------------------------------------

    async def token(self, request: web.Request) -> web.Response:
        self.token_requests += 1
        form = await request.post()
        client_id, secret = form.get("client_id"), form.get("client_secret")
        if "Authorization" in request.headers:
            basic = BasicAuth.decode(request.headers["Authorization"])
            client_id, secret = basic.login, basic.password
        if form.get("grant_type") != "client_credentials":
            return json_response({"error": "unsupported_grant_type"}, 400)
        if client_id != self.client_id or secret != self.client_secret:
            return json_response({"error": "invalid_client", "error_description": "client authentication failed"},
                                 401)
        token = secrets.token_urlsafe(24)
        self.tokens[token] = time.monotonic() + self.expires_in
        expires: int | str = str(self.expires_in) if self.expires_in_as_text else self.expires_in
        return json_response({"access_token": token, "token_type": "Bearer", "expires_in": expires,
                              "scope": "penalty.read"})

    def _authorized(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        token = header.removeprefix("Bearer ")
        return header.startswith("Bearer ") and self.tokens.get(token, 0) > time.monotonic()

    async def penalties(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return _error(401, "UNAUTHORIZED", "access_token无效或已过期",
                          {"WWW-Authenticate": 'Bearer error="invalid_token"'})
        if self.raw_replies:
            return self.raw_replies.popleft()
        query = request.query
        try:
            limit = int(query.get("limit", "100"))
        except ValueError:
            return _error(400, "BAD_REQUEST", "limit")
        if not 1 <= limit <= 500:
            return _error(400, "BAD_REQUEST", "limit must be 1-500")
        if "cursor" in query:
            after = self._decode(query["cursor"])
            if after is None:
                return _error(410, "CURSOR_EXPIRED", "游标已过期，请使用updatedSince重新同步")
        elif "updatedSince" in query:
            try:
                after = (datetime.fromisoformat(query["updatedSince"]) - timedelta(microseconds=1), "")
            except ValueError:
                return _error(400, "BAD_REQUEST", "updatedSince")
        else:
            return _error(400, "BAD_REQUEST", "cursor or updatedSince required")
        ordered = sorted(self.records.values(), key=_key)
        later = [r for r in ordered if _key(r) > after]
        page, more = later[:limit], len(later) > limit
        last = _key(page[-1]) if page else after
        self._pages_served += 1
        if self._pages_served == self.expire_tokens_after_pages:
            self.expire_tokens()
        body: dict[str, Any] = {"items": page, "nextCursor": self._encode(last), "hasMore": more}
        if self.omit_next_cursor:
            del body["nextCursor"]
        return self._page_response(body)

    def _page_response(self, body: dict[str, Any]) -> web.Response:
        response = web.Response(body=json.dumps(body, ensure_ascii=False).encode(self.page_charset),
                                headers={"Content-Type": f"application/json; charset={self.page_charset}",
                                         "X-RateLimit-Remaining": "9"})
        if self.gzip_pages:
            response.enable_compression(web.ContentCoding.gzip)
        return response

    def _encode(self, key: tuple[datetime, str]) -> str:
        raw = json.dumps({"u": key[0].isoformat(), "id": key[1], "g": self.generation}).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def _decode(self, cursor: str) -> tuple[datetime, str] | None:
        try:
            data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        except ValueError:
            return None
        if data.get("g") != self.generation:
            return None
        return datetime.fromisoformat(data["u"]), str(data["id"])


def _key(record: dict[str, Any]) -> tuple[datetime, str]:
    return datetime.fromisoformat(record["updatedAt"]), record["id"]
