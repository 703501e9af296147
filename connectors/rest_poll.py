"""Pull over REST: page through a source's listing by cursor or by page number and time.

How a source pages, authenticates and reports errors is a profile (connectors/rest/profile.py):
``eco-rest``, ``hotline-12315`` and ``credit-v2`` are built in; another REST source is a profile
in the options. Each page is one envelope (payload = the page as received, minus versions already
published), so the mapping's ``records`` path applies. The position is saved only after
``publish`` returned. 401 → new token once; 429 → wait exactly Retry-After; 5xx, timeouts and a
failed durable write → backoff (1 s, 2 s, 4 s … ≤ 5 min) with the position unchanged; 400/403, a
refused client, a 410 to a request that carried no cursor, and a body over ``max_body_bytes`` or
declared JSON that does not decode (PayloadError) → PermanentError (the supervisor stops the
connector). Logs carry ids and counts, never tokens, secrets or the records' personal data.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from connectors.base import ConnectorContext, Publish
from connectors.rest.auth import Credentials
from connectors.rest.client import CursorExpired, RateLimited, TokenRejected, Transport, page_of
from connectors.rest.limits import Backoff, TokenBucket
from connectors.rest.paging import Pager, PageRequest, PollState
from connectors.rest.profile import Resource, RestProfile, builtin_profile, builtin_profile_names, get_path
from gateway.envelope import Envelope
from gateway.errors import ConfigError, PermanentError, SourceUnavailable, StoreUnavailable

log = logging.getLogger(__name__)


class LeaseLost(Exception):
    """Another instance holds the poll lease now: stop this cycle without saving more."""


@dataclass
class PollStats:
    """Counters of what the connector did (for ops and tests); never any record content."""

    cycles: int = 0
    pages: int = 0
    records: int = 0
    duplicates_dropped: int = 0
    failures: int = 0
    rate_limited: int = 0
    token_refreshes: int = 0
    cursor_restarts: int = 0
    store_failures: int = 0
    skipped_cycles: int = 0

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


class RestPollConnector:
    class Config(BaseModel):
        model_config = ConfigDict(extra="forbid", frozen=True)
        base_url: str = Field(pattern=r"^https?://")
        profile: str | RestProfile = Field(description="a built-in profile name, or a whole profile inline")
        resources: tuple[Resource, ...] | None = Field(default=None, description="replaces the profile's")
        params: dict[str, str] = Field(default_factory=dict, description="constant query parameters (12315 region)")
        client_id: str | None = None
        client_secret: SecretStr | None = None
        api_key: SecretStr | None = None
        initial_since: datetime | None = Field(default=None, description="first sync start (with offset)")
        initial_lookback_s: float = Field(default=86_400.0, gt=0)
        page_size: int | None = Field(default=None, ge=1)
        poll_interval_s: float = Field(default=60.0, gt=0)
        timeout_s: float | None = Field(default=None, gt=0)
        max_body_bytes: int | None = Field(default=None, ge=1024, description="replaces the profile's")
        rate_per_s: float | None = Field(default=None, gt=0)
        backoff_first_s: float = Field(default=1.0, gt=0)
        backoff_max_s: float = Field(default=300.0, gt=0)
        lease_renew_s: float = Field(default=10.0, gt=0, description="renew the poll lease this often while waiting")

    pushes_over_http: ClassVar[bool] = False

    def __init__(self, connector_id: str, config: Config, context: ConnectorContext) -> None:
        self.connector_id = connector_id
        self.config = config
        self.profile = _resolve(config.profile)
        self.resources = config.resources or self.profile.resources
        self._state = context.state
        self._lease = context.lease
        self._transport = Transport(config.base_url, config.timeout_s or self.profile.timeout_s,
                                    config.max_body_bytes or self.profile.max_body_bytes)
        self._credentials = Credentials(self.profile.auth, self._transport, client_id=config.client_id,
                                        client_secret=config.client_secret, api_key=config.api_key)
        self._pager = Pager(self.profile.paging, self.profile.records,
                            config.page_size or self.profile.paging.page_size)
        self._bucket = TokenBucket(config.rate_per_s or self.profile.rate_per_s)
        self._backoff = Backoff(config.backoff_first_s, config.backoff_max_s)
        self._wake = asyncio.Event()
        self.stats = PollStats()

    @property
    def token_requests(self) -> int:
        return self._credentials.token_requests

    def wake(self) -> None:
        """Poll now instead of at the end of the interval."""
        self._wake.set()

    async def run(self, publish: Publish) -> None:
        try:
            while True:
                if await self._lease.acquire():
                    await self.poll_once(publish)
                else:
                    self.stats.skipped_cycles += 1
                    log.debug("%s: poll lease held elsewhere; cycle skipped", self.connector_id)
                await self._idle()
        finally:
            await self.close()
            await self._lease.release()

    async def probe(self) -> dict[str, Any]:
        """Connection test (the admin API's): authenticate and read the first page of the first resource;
        nothing is published or saved."""
        resource = self.resources[0]
        request = self._pager.first(PollState(), self._initial_since())
        try:
            if request is not None:
                await self._fetch(resource.path, request)
        finally:
            await self.close()
        return {"resource": resource.name, "path": resource.path}

    async def close(self) -> None:
        """Close the HTTP session (``run`` does it on exit; for callers of ``poll_once``)."""
        await self._transport.close()

    async def _idle(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), self.config.poll_interval_s)
        self._wake.clear()

    async def poll_once(self, publish: Publish) -> bool:
        """One cycle over every resource; False when the lease was lost midway."""
        try:
            for resource in self.resources:
                await self._poll_resource(resource, publish)
        except LeaseLost:
            log.warning("%s: poll lease lost; cycle stopped", self.connector_id)
            return False
        self.stats.cycles += 1
        return True

    async def _poll_resource(self, resource: Resource, publish: Publish) -> None:
        key = f"poll:{resource.name}"
        state = PollState.from_json(await self._state.load(key))
        initial = self._initial_since()
        started = datetime.now(UTC)
        request: PageRequest | None = self._pager.first(state, initial, started)
        while request is not None:
            try:
                body, raw = await self._fetch(resource.path, request)
            except CursorExpired as exc:
                if self.profile.paging.cursor_param not in request.params:
                    # Only a cursor can expire; restarting by time again would loop on the same answer.
                    raise PermanentError(f"{exc} without a cursor (asked {request.label}) / 未带游标却返回游标过期"
                                         ) from exc
                self.stats.cursor_restarts += 1
                self._pager.restart_after_expired_cursor(state, initial)
                log.warning("%s/%s: cursor expired; restarting from %s", self.connector_id, resource.name,
                            state.since.isoformat() if state.since else "-")
                request = self._pager.first(state, initial, started)
                continue
            trial = PollState.from_json(state.to_json())
            if not await self._publish_page(resource, request, body, raw, trial, publish):
                continue  # the durable write failed: same request again, position unchanged
            request = self._pager.following(request, body, trial, started)
            self._pager.prune(trial)
            await self._state.save(key, trial.to_json())
            state = trial
            if not await self._lease.renew():
                raise LeaseLost

    async def _publish_page(self, resource: Resource, request: PageRequest, body: Any, raw: bytes,
                            trial: PollState, publish: Publish) -> bool:
        fresh, dropped = self._pager.fresh_items(body, trial)
        self.stats.pages += 1
        self.stats.duplicates_dropped += dropped
        if not fresh:
            return True
        payload = _with_items(body, self.profile.records.items_path, fresh) if dropped else body
        meta = {"location": f"GET {resource.path} {request.label}", "variant": resource.variant,
                "resource": resource.name}
        envelope = Envelope(connector=self.connector_id, payload=payload, received_at=datetime.now(UTC),
                            meta=meta, raw=raw)
        try:
            receipt = await publish(envelope)
        except StoreUnavailable as exc:
            self.stats.store_failures += 1
            delay_s = self._backoff.next_delay_s()
            log.warning("%s/%s: store unavailable, page not acknowledged; retry in %.1f s: %s", self.connector_id,
                        resource.name, delay_s, exc.__cause__ or exc)
            await self._pause(delay_s)
            return False
        self.stats.records += len(fresh)
        log.info("%s/%s: page %s: %d accepted, %d rejected, %d duplicate, %d re-read dropped", self.connector_id,
                 resource.name, request.label, receipt.accepted, receipt.rejected, receipt.duplicate, dropped)
        return True

    async def _fetch(self, path: str, request: PageRequest) -> tuple[Any, bytes]:
        refreshed = False
        what = f"GET {path}"
        while True:
            await self._bucket.acquire()
            try:
                headers = await self._credentials.headers()
                answer = await self._transport.request("GET", path, params={**self.config.params, **request.params},
                                                       headers=headers)
                body = page_of(answer, what, rules=self.profile.body_status,
                               cursor_expired_status=self._cursor_expired_status())
                records = self.profile.records
                if records.items_required and not isinstance(get_path(body, records.items_path), list):
                    raise SourceUnavailable(f"{what}: a 200 answer without '{records.items_path}': not a page "
                                            "（应答不是数据页）")
            except TokenRejected as exc:
                if refreshed or not self._credentials.refreshable:
                    raise PermanentError(f"{what}: credentials rejected / 凭据被拒绝: {exc}") from exc
                refreshed = True
                self.stats.token_refreshes += 1
                self._credentials.invalidate()
                continue
            except RateLimited as exc:
                self.stats.rate_limited += 1
                wait_s = exc.retry_after_s or 0.0
                log.info("%s: rate limited; waiting %.1f s as asked", self.connector_id, wait_s)
                await self._pause(wait_s)
                continue
            except CursorExpired:
                raise
            except SourceUnavailable as exc:
                self.stats.failures += 1
                wait_s = exc.retry_after_s if exc.retry_after_s is not None else self._backoff.next_delay_s()
                log.warning("%s: %s; retry in %.1f s", self.connector_id, exc, wait_s)
                await self._pause(wait_s)
                continue
            self._backoff.reset()
            return body, answer.body

    def _cursor_expired_status(self) -> int | None:
        paging = self.profile.paging
        return paging.cursor_expired_status if paging.style == "cursor" else None

    async def _pause(self, wait_s: float) -> None:
        """Sleep, renewing the lease on the way, so a long Retry-After does not hand the source over."""
        loop = asyncio.get_running_loop()
        until = loop.time() + wait_s
        while (left_s := until - loop.time()) > 0:
            await asyncio.sleep(min(left_s, self.config.lease_renew_s))
            if not await self._lease.renew():
                raise LeaseLost

    def _initial_since(self) -> datetime:
        if self.config.initial_since is not None:
            return self.config.initial_since
        return datetime.now(UTC) - timedelta(seconds=self.config.initial_lookback_s)


def _resolve(profile: str | RestProfile) -> RestProfile:
    if isinstance(profile, RestProfile):
        return profile
    try:
        return builtin_profile(profile)
    except KeyError as exc:
        raise ConfigError(f"profile: unknown REST profile {profile!r}; built in: "
                          f"{', '.join(builtin_profile_names())}") from exc


def _with_items(body: Any, items_path: str, items: list[Any]) -> Any:
    """A copy of the page with the list at ``items_path`` replaced (only the dicts on the way are copied)."""
    head, _, rest = items_path.partition(".")
    if not isinstance(body, dict):
        return body
    inner = items if not rest else _with_items(body.get(head), rest, items)
    return {**body, head: inner}

