"""Credentials for REST pulls: OAuth2 client credentials, a JSON token endpoint, or a static key.

Tokens are fetched lazily and refreshed ahead of expiry (``refresh_before_s``, at most half the
lifetime). A rejected token is dropped so the next request fetches a new one. The token endpoint
refusing the client (400/401/403) is permanent: the connector stops rather than locking the
account. Neither tokens nor secrets ever reach a log or an exception message.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from typing import Any

from pydantic import SecretStr

from connectors.rest.client import Answer, RateLimited, Transport, error_summary, page_of
from connectors.rest.profile import AuthProfile, get_path
from gateway.errors import ConfigError, PermanentError, SourceUnavailable


class Credentials:
    """Headers that authenticate a request; ``refreshable`` says a new token may fix a 401."""

    def __init__(self, profile: AuthProfile, transport: Transport, *, client_id: str | None,
                 client_secret: SecretStr | None, api_key: SecretStr | None,
                 clock: Callable[[], float] | None = None) -> None:
        self._profile = profile
        self._transport = transport
        self._client_id = client_id
        self._client_secret = client_secret
        self._api_key = api_key
        self._clock = clock or (lambda: asyncio.get_running_loop().time())
        self._token: str | None = None
        self._refresh_at = 0.0
        self._lock = asyncio.Lock()
        self.token_requests = 0
        _check(profile, client_id, client_secret, api_key)

    @property
    def refreshable(self) -> bool:
        return self._profile.kind in ("oauth2_client_credentials", "token_endpoint")

    async def headers(self) -> dict[str, str]:
        kind = self._profile.kind
        if kind == "none":
            return {}
        if kind == "api_key":
            assert self._api_key is not None  # checked at construction
            return {self._profile.header: self._profile.prefix + self._api_key.get_secret_value()}
        async with self._lock:
            if self._token is None or self._clock() >= self._refresh_at:
                await self._fetch_token()
            assert self._token is not None
            return {self._profile.header: self._profile.prefix + self._token}

    def invalidate(self) -> None:
        """Forget the token (the source rejected it); the next request fetches a new one."""
        self._token = None

    async def _fetch_token(self) -> None:
        self.token_requests += 1
        answer = await self._request_token()
        if answer.status in (400, 401, 403):
            raise PermanentError(f"token endpoint refused the client (HTTP {answer.status} {error_summary(answer)}); "
                                 "check the credentials and scope / 令牌接口拒绝了客户端凭据，请核对配置")
        try:
            body = page_of(answer, "token endpoint")
        except RateLimited:
            raise
        except PermanentError as exc:
            raise PermanentError(f"token endpoint: {exc}") from exc
        token = get_path(body, self._profile.token_path)
        expires_s = _lifetime_s(get_path(body, self._profile.expires_path))
        if not isinstance(token, str) or not token or expires_s is None:
            raise SourceUnavailable("token endpoint answered without a token or its lifetime")
        margin_s = min(self._profile.refresh_before_s, expires_s / 2)
        self._token = token
        self._refresh_at = self._clock() + expires_s - margin_s

    async def _request_token(self) -> Answer:
        p = self._profile
        assert self._client_id is not None and self._client_secret is not None
        secret = self._client_secret.get_secret_value()
        if p.kind == "token_endpoint":
            return await self._transport.request("POST", p.token_url_path,
                                                 json_body={p.id_field: self._client_id, p.secret_field: secret})
        form = {"grant_type": "client_credentials", **({"scope": p.scope} if p.scope else {})}
        if p.basic_auth:
            return await self._transport.request("POST", p.token_url_path, data=form,
                                                 basic=(self._client_id, secret))
        return await self._transport.request("POST", p.token_url_path,
                                             data={**form, p.id_field: self._client_id, p.secret_field: secret})


def _lifetime_s(value: Any) -> float | None:
    """``expires_in`` as seconds: a JSON number, or a numeric string as some token servers send it."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if isinstance(value, int | float) and math.isfinite(value) and value > 0:
        return float(value)
    return None


def _check(profile: AuthProfile, client_id: str | None, client_secret: SecretStr | None,
           api_key: SecretStr | None) -> None:
    if profile.kind in ("oauth2_client_credentials", "token_endpoint") and (not client_id or client_secret is None):
        raise ConfigError(f"auth {profile.kind} needs client_id and client_secret")
    if profile.kind == "api_key" and api_key is None:
        raise ConfigError("auth api_key needs api_key")
