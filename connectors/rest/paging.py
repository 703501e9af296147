"""Where a REST pull stands and what to ask next: keyset cursors and page numbers over a time.

Keyset cursor (eco-rest): pass the saved ``nextCursor``; the first sync, and a restart after the
cursor expired, go by time from ``last seen updatedAt − overlap``. A page without ``nextCursor``
(the contract promises one) is followed by time from its latest change, and the next poll starts
from the latest published − overlap; the same cursor twice ends the cycle rather than loop.

Page numbers (12315, 双公示 v2): each run starts at ``cursor time − overlap`` from page 1; the
cursor time becomes the run's maximum change time only when the run completed. Both dedupe on
(id, change time) inside the re-read window, so an overlap never publishes a version twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from connectors.rest.profile import PagingProfile, RecordsProfile, get_path

log = logging.getLogger(__name__)


def parse_offset(text: str) -> timezone:
    sign = -1 if text.startswith("-") else 1
    hours, _, minutes = text.lstrip("+-").partition(":")
    return timezone(sign * timedelta(hours=int(hours), minutes=int(minutes or 0)))


class TimeFormat:
    """Reads and writes source timestamps: ISO 8601, or a strftime pattern in the source's zone."""

    def __init__(self, pattern: str, tz: timezone) -> None:
        self._pattern = pattern
        self._tz = tz

    def parse(self, value: Any) -> datetime | None:
        if not isinstance(value, str) or not value:
            return None
        try:
            if self._pattern == "iso":
                parsed = datetime.fromisoformat(value.upper())  # RFC 3339 allows a lower-case t / z
                return parsed if parsed.tzinfo else parsed.replace(tzinfo=self._tz)
            return datetime.strptime(value, self._pattern).replace(tzinfo=self._tz)
        except ValueError:
            return None

    def format(self, when: datetime) -> str:
        local = when.astimezone(self._tz)
        return local.isoformat(timespec="seconds") if self._pattern == "iso" else local.strftime(self._pattern)


@dataclass
class PollState:
    """One resource's durable position (JSON in the connector state)."""

    cursor: str | None = None
    since: datetime | None = None         # cursor style: restart time; page style: last completed run's max
    max_updated: datetime | None = None   # latest change time published
    seen: dict[tuple[str, str], datetime] = field(default_factory=dict)  # (id, change) -> change time

    def to_json(self) -> dict[str, Any]:
        return {"cursor": self.cursor, "since": _iso(self.since), "max_updated": _iso(self.max_updated),
                "seen": sorted([i, c, t.isoformat()] for (i, c), t in self.seen.items())}

    @classmethod
    def from_json(cls, value: Any) -> PollState:
        if not isinstance(value, dict):
            return cls()
        seen = {(str(i), str(c)): datetime.fromisoformat(t) for i, c, t in value.get("seen") or ()}
        return cls(cursor=value.get("cursor"), since=_from_iso(value.get("since")),
                   max_updated=_from_iso(value.get("max_updated")), seen=seen)


def _iso(when: datetime | None) -> str | None:
    return when.isoformat() if when else None


def _from_iso(text: Any) -> datetime | None:
    return datetime.fromisoformat(text) if isinstance(text, str) and text else None


@dataclass(frozen=True, slots=True)
class PageRequest:
    params: dict[str, str]
    label: str
    page: int = 0


class Pager:
    """Requests and state transitions of one paging style (both styles share this class)."""

    def __init__(self, paging: PagingProfile, records: RecordsProfile, page_size: int) -> None:
        tz = parse_offset(paging.source_tz)
        self.paging = paging
        self.records = records
        self.page_size = min(page_size, paging.max_page_size)
        self._since_format = TimeFormat(paging.since_format, tz)
        self.updated_format = TimeFormat(records.updated_format, tz)
        self._tz = tz
        self._overlap = timedelta(seconds=paging.overlap_s)

    # -- requests ---------------------------------------------------------------------------------

    def first(self, state: PollState, initial_since: datetime, now: datetime | None = None) -> PageRequest:
        """The cycle's first request; with ``now``, a start older than the source allows
        (``max_since_age_s``: a long outage, an old ``initial_since``) is moved up to the oldest it
        accepts, with a warning: the source would refuse it (permanently) otherwise."""
        p = self.paging
        size = {p.size_param: str(self.page_size)}
        if p.style == "cursor":
            if state.cursor:
                return PageRequest({p.cursor_param: state.cursor, **size}, f"{p.cursor_param}={state.cursor}")
            since = self._since_format.format(self._allowed(state.since or initial_since, now))
            return PageRequest({p.since_param: since, **size}, f"{p.since_param}={since}")
        start = self._allowed(state.since - self._overlap if state.since else initial_since, now)
        return self._page(self._since_format.format(start), p.first_page)

    def _allowed(self, since: datetime, now: datetime | None) -> datetime:
        age = self.paging.max_since_age_s
        if age is None or now is None or since >= now - timedelta(seconds=age):
            return since
        oldest = now - timedelta(seconds=age)
        log.warning("%s=%s is older than the source allows; reading from %s: changes before it cannot be read"
                    "（起始时间超出来源允许范围，更早的变更无法读取）", self.paging.since_param, since.isoformat(),
                    oldest.isoformat())
        return oldest

    def _page(self, start: str, page: int) -> PageRequest:
        p = self.paging
        return PageRequest({p.since_param: start, p.page_param: str(page), p.size_param: str(self.page_size)},
                           f"{p.since_param}={start} {p.page_param}={page}", page)

    def following(self, request: PageRequest, body: Any, state: PollState,
                  started: datetime | None = None) -> PageRequest | None:
        """The next request of this cycle after ``body`` was published, updating ``state``; None at the
        end. A cycle that ends having found nothing at all (no change time, no cursor) leaves its own
        start (``started``) for the next one, not the initial time again, which the source may stop
        accepting (12315: 31 days)."""
        following = self._following(request, body, state)
        if following is None and started is not None and state.since is None and not state.cursor:
            state.since = started
        return following

    def _following(self, request: PageRequest, body: Any, state: PollState) -> PageRequest | None:
        p = self.paging
        if p.style == "cursor":
            return self._following_cursor(request, body, state)
        if self._last_page(request, body):
            # The run completed: its latest change time becomes the cursor.
            state.since = max(filter(None, (state.since, state.max_updated)), default=None)
            self.prune(state)
            return None
        return self._page(request.params[p.since_param], request.page + 1)

    def _following_cursor(self, request: PageRequest, body: Any, state: PollState) -> PageRequest | None:
        p = self.paging
        more = _flag(get_path(body, p.has_more_path))
        next_cursor = get_path(body, p.next_cursor_path)
        if not (isinstance(next_cursor, str) and next_cursor):
            return self._following_by_time(request, body, state, more)
        state.cursor = next_cursor
        if not more or next_cursor == request.params.get(p.cursor_param):  # the same cursor again: no progress
            return None
        size = {p.size_param: str(self.page_size)}
        return PageRequest({p.cursor_param: next_cursor, **size}, f"{p.cursor_param}={next_cursor}")

    def _following_by_time(self, request: PageRequest, body: Any, state: PollState,
                           more: bool) -> PageRequest | None:
        """A page without a cursor (the contract promises one on every page): go on from this page's
        latest change time (inclusive; the boundary is deduped), and start the next poll from the
        latest published − overlap, never again from the initial time."""
        p = self.paging
        state.cursor = None
        if state.max_updated is not None:
            state.since = state.max_updated - self._overlap
        latest = self._latest_change(body)
        if not more or latest is None:
            return None
        since = self._since_format.format(latest)
        if since == request.params.get(p.since_param):
            return None  # a whole page at one time: asking again would return the same page
        return PageRequest({p.since_param: since, p.size_param: str(self.page_size)}, f"{p.since_param}={since}")

    def _latest_change(self, body: Any) -> datetime | None:
        items = get_path(body, self.records.items_path)
        times = [t for _, t in map(self._key, items)] if isinstance(items, list) else []
        return max(filter(None, times), default=None)

    def _last_page(self, request: PageRequest, body: Any) -> bool:
        p = self.paging
        items = get_path(body, self.records.items_path)
        if not items:
            return True
        if p.pages_path:
            pages = _count(get_path(body, p.pages_path))
            return pages is None or request.page >= pages
        total = _count(get_path(body, p.total_path)) if p.total_path else None
        return total is None or request.page * self.page_size >= total

    def restart_after_expired_cursor(self, state: PollState, initial_since: datetime) -> None:
        state.cursor = None
        state.since = (state.max_updated or state.since or initial_since) - self._overlap

    # -- dedupe -----------------------------------------------------------------------------------

    def fresh_items(self, body: Any, state: PollState) -> tuple[list[Any], int]:
        """The page's items not yet published (by id and change time), recorded as seen; and how many
        were dropped. Items without an id or change time are kept (the mapping reports them)."""
        items = get_path(body, self.records.items_path)
        if not isinstance(items, list):
            return [], 0
        fresh: list[Any] = []
        for item in items:
            key, changed = self._key(item)
            if key is None or changed is None:
                fresh.append(item)
                continue
            if key in state.seen:
                continue
            state.seen[key] = changed
            fresh.append(item)
            if state.max_updated is None or changed > state.max_updated:
                state.max_updated = changed
        return fresh, len(items) - len(fresh)

    def _key(self, item: Any) -> tuple[tuple[str, str] | None, datetime | None]:
        if not isinstance(item, dict):
            return None, None
        ident, changed_text = item.get(self.records.id_field), item.get(self.records.updated_field)
        changed = self.updated_format.parse(changed_text)
        if ident is None or changed is None:
            return None, None
        # The key names the instant in the source's zone, so "…Z" and "…+08:00" of one version match.
        return (str(ident), changed.astimezone(self._tz).isoformat()), changed

    def prune(self, state: PollState) -> None:
        """Forget versions older than any re-read can reach."""
        reach = state.max_updated if self.paging.style == "cursor" else state.since
        if reach is None:
            return
        floor = reach - self._overlap
        state.seen = {k: t for k, t in state.seen.items() if t >= floor}


def _flag(value: Any) -> bool:
    """A JSON boolean as sources send it: ``true``, or the text ``"true"`` / ``"1"`` (``bool("false")``
    would be true and ask for a page after the last)."""
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return value is True or (isinstance(value, int) and value == 1)


def _count(value: Any) -> int | None:
    """A page or item count as sources send it: a JSON integer, or its digits as text."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None
