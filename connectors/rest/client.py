"""HTTP for REST pulls: one request, its answer, and what the answer means for the caller.

aiohttp failures become gateway errors here. An answer is classified once: a page (JSON), an
invalid token (refresh once), an expired cursor, a rate limit (wait exactly Retry-After), a
transient failure (backoff) or a permanent one (stop). 502/504 bodies come from proxies and may be
HTML: they are never parsed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from connectors.rest.profile import BodyStatusProfile, get_path
from gateway.errors import PermanentError, SourceUnavailable, retry_after_s

DEFAULT_RATE_LIMIT_WAIT_S = 1.0


class TokenRejected(SourceUnavailable):
    """401: the token is expired or unknown; fetch a new one once, then retry."""


class CursorExpired(SourceUnavailable):
    """The keyset cursor is no longer valid; restart from a time."""


class RateLimited(SourceUnavailable):
    """429: wait exactly ``retry_after_s``; not a failure of the source."""


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Transport:
    """An aiohttp session bound to a base URL; opened lazily inside the running loop."""

    def __init__(self, base_url: str, timeout_s: float) -> None:
        self._base_url = base_url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    async def request(self, method: str, path: str, *, params: Mapping[str, str] | None = None,
                      headers: Mapping[str, str] | None = None, data: Mapping[str, str] | None = None,
                      json_body: Any = None, basic: tuple[str, str] | None = None) -> Answer:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        auth = aiohttp.BasicAuth(*basic) if basic else None
        try:
            async with self._session.request(method, self._base_url + path, params=params, headers=headers,
                                             data=data, json=json_body, auth=auth) as response:
                body = await response.read()
                return Answer(response.status, dict(response.headers), body)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise SourceUnavailable(f"{method} {path}: {type(exc).__name__}") from exc

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _error_code(answer: Answer) -> str:
    """The source's error code from a JSON error body, for messages (never the whole body)."""
    if answer.status in (502, 504):
        return "-"
    try:
        body = answer.json()
    except (ValueError, UnicodeDecodeError):
        return "-"
    if isinstance(body, dict):
        return str(body.get("code") or body.get("error") or "-")
    return "-"


def _status_from_body(answer: Answer, rules: BodyStatusProfile | None) -> tuple[int, Any, float | None]:
    """The effective status of a 2xx answer (an error may hide in its body) and its decoded JSON."""
    try:
        body = answer.json()
    except (ValueError, UnicodeDecodeError) as exc:
        raise SourceUnavailable(f"HTTP {answer.status} with a body that is not JSON") from exc
    if rules is None:
        return answer.status, body, None
    code = get_path(body, rules.path)
    code_text = str(code)
    if code_text in rules.ok:
        return answer.status, body, None
    return rules.as_status.get(code_text, 500), body, rules.retry_after_s.get(code_text)


def page_of(answer: Answer, what: str, *, rules: BodyStatusProfile | None = None,
            cursor_expired_status: int | None = None) -> Any:
    """The decoded JSON of a successful answer, or the typed error the answer means."""
    status, body, rule_wait_s = answer.status, None, None
    if 200 <= status < 300:
        status, body, rule_wait_s = _status_from_body(answer, rules)
        if 200 <= status < 300:
            return body
    code = str(get_path(body, rules.path)) if body is not None and rules else _error_code(answer)
    header_wait_s = retry_after_s(answer.headers.get("Retry-After"))
    wait_s = header_wait_s if header_wait_s is not None else rule_wait_s
    message = f"{what}: HTTP {answer.status} code {code}"
    if status == 401:
        raise TokenRejected(message)
    if cursor_expired_status is not None and status == cursor_expired_status:
        raise CursorExpired(message)
    if status == 429:
        raise RateLimited(message, retry_after_s=wait_s if wait_s is not None else DEFAULT_RATE_LIMIT_WAIT_S)
    if status >= 500 or status == 408:
        raise SourceUnavailable(message, retry_after_s=wait_s)
    raise PermanentError(message)
