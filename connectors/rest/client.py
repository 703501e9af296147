"""HTTP for REST pulls: one request, its answer, and what the answer means for the caller.

aiohttp failures become gateway errors here. An answer is classified once: a page (JSON), an
invalid token (refresh once), an expired cursor, a rate limit (wait exactly Retry-After), a
transient failure (backoff) or a permanent one (stop). 502/504 bodies come from proxies and may be
HTML: they are never parsed. A body is read up to ``max_body_bytes`` after decompression (gzip is
undone by aiohttp) and decoded in the charset its Content-Type declares. A 2xx body that is not
JSON is transient when it does not claim to be (a proxy's page); one declared JSON that cannot be
decoded is the source's fault and permanent (``PayloadError``), so the connector stops and says
where instead of retrying the same bytes forever.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from connectors.codecs import DecodeLimits
from connectors.codecs.limits import check_size
from connectors.rest.profile import BodyStatusProfile, get_path
from gateway.errors import PayloadError, PermanentError, SourceUnavailable, retry_after_s

DEFAULT_RATE_LIMIT_WAIT_S = 1.0
DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024
_READ_CHUNK_BYTES = 64 * 1024
_UTF8_NAMES = frozenset({"utf-8", "utf8"})
_MAX_SOURCE_MESSAGE_CHARS = 200


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
        """The body as JSON, in the charset its Content-Type declares (UTF-8/16/32 by its bytes when
        none). Raises ValueError (incl. JSONDecodeError, UnicodeDecodeError) or LookupError."""
        charset = _charset(self.headers.get("Content-Type", ""))
        if charset is None or charset in _UTF8_NAMES:
            return json.loads(self.body)
        return json.loads(self.body.decode(charset))

    def declares_json(self) -> bool:
        """True when Content-Type says JSON (not when it is absent or names HTML from a proxy)."""
        media = self.headers.get("Content-Type", "").partition(";")[0].strip().lower()
        return media.endswith("/json") or media.endswith("+json")


def _charset(content_type: str) -> str | None:
    for param in content_type.split(";")[1:]:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            return value.strip().strip('"').lower() or None
    return None


class Transport:
    """An aiohttp session bound to a base URL; opened lazily inside the running loop."""

    def __init__(self, base_url: str, timeout_s: float, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
        self._base_url = base_url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._limits = DecodeLimits(max_bytes=max_body_bytes)
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
                body = await self._read(response, f"{method} {path}")
                return Answer(response.status, dict(response.headers), body)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise SourceUnavailable(f"{method} {path}: {type(exc).__name__}") from exc

    async def _read(self, response: aiohttp.ClientResponse, what: str) -> bytes:
        """The decompressed body, refused as soon as it passes the limit (a gzip bomb never lands whole)."""
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.content.iter_chunked(_READ_CHUNK_BYTES):
            size += len(chunk)
            check_size(size, self._limits, f"{what}: the HTTP {response.status} body (read so far)")
            chunks.append(chunk)
        return b"".join(chunks)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def error_summary(answer: Answer) -> str:
    """The source's error code, and its trace id and message when given, from a JSON error body (for
    the operator's alert and the source's support; never the whole body)."""
    if answer.status in (502, 504):
        return "-"
    try:
        body = answer.json()
    except (ValueError, LookupError):
        return "-"
    if not isinstance(body, dict):
        return "-"
    summary = str(body.get("code") or body.get("error") or "-")
    if body.get("traceId"):
        summary += f" traceId {body['traceId']}"
    message = body.get("message") or body.get("error_description")
    if isinstance(message, str) and message:
        summary += f": {message[:_MAX_SOURCE_MESSAGE_CHARS]}"
    return summary


def _status_from_body(answer: Answer, what: str, rules: BodyStatusProfile | None) -> tuple[int, Any, float | None]:
    """The effective status of a 2xx answer (an error may hide in its body) and its decoded JSON."""
    try:
        body = answer.json()
    except (ValueError, LookupError) as exc:
        raise _undecodable(answer, what, exc) from exc
    if rules is None:
        return answer.status, body, None
    code = get_path(body, rules.path)
    code_text = str(code)
    if code_text in rules.ok:
        return answer.status, body, None
    return rules.as_status.get(code_text, 500), body, rules.retry_after_s.get(code_text)


def _undecodable(answer: Answer, what: str, exc: ValueError | LookupError) -> Exception:
    """A body that claims JSON and is not is the source's fault (permanent, with where it breaks); an
    undeclared or other body (a proxy's page) is transient."""
    content_type = answer.headers.get("Content-Type", "-")
    if not answer.declares_json():
        return SourceUnavailable(f"{what}: HTTP {answer.status} with a body that is not JSON ({content_type})")
    if isinstance(exc, json.JSONDecodeError):
        where = f"line {exc.lineno} column {exc.colno}"
        return PayloadError("JSON_MALFORMED", f"{what}: HTTP {answer.status}: malformed JSON at {where}: {exc.msg} "
                            "/ 应答不是合法的 JSON", location=where)
    return PayloadError("ENCODING", f"{what}: HTTP {answer.status}: body cannot be decoded as declared "
                        f"({content_type}) / 应答无法按声明的字符集解码")


def page_of(answer: Answer, what: str, *, rules: BodyStatusProfile | None = None,
            cursor_expired_status: int | None = None) -> Any:
    """The decoded JSON of a successful answer, or the typed error the answer means."""
    status, body, rule_wait_s = answer.status, None, None
    if 200 <= status < 300:
        status, body, rule_wait_s = _status_from_body(answer, what, rules)
        if 200 <= status < 300:
            return body
    code = str(get_path(body, rules.path)) if body is not None and rules else error_summary(answer)
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
