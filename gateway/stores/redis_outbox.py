"""The outbox on Redis Streams: one stream and one consumer group per adapter.

Keys (one adapter's share the hash tag ``{adapter}``), under ``<prefix>:outbox:{<adapter>}:``:

- ``stream``: the entries (record id, business key hash, kind, department, enqueued at, payload);
  the group is named after the adapter, every worker is a consumer of it;
- ``retry``: zset, entry id -> due time (ms) of a rescheduled entry, durably (not in memory);
- ``owners``: hash, business key hash -> the entry now on its way for that key; a later version
  read meanwhile waits in ``held:<key>`` (a list) and is scheduled when the owner settles;
- ``dead``: hash, entry id -> the dead letter (fields, attempts, error) as JSON;
- ``id:<record_id>``: idempotency: set when the record was queued (``SET NX``), so queueing the
  same record again (the relay after a crash) adds nothing;
- ``errors``: hash, entry id -> last error of a rescheduled entry.

Attempts are the group's delivery count: XREADGROUP and XCLAIM raise it, a crashed worker's
entries are reclaimed with XCLAIM after ``lease_s`` of idleness and keep it. The stream is trimmed
(``XTRIM MINID``) only below the oldest pending entry and the group's read cursor, so an entry
not yet delivered is never dropped. Redis must persist (AOF, ``appendfsync everysec`` or
``always``) for entries to survive a Redis restart; see ``durable.py`` for what is acknowledged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

import orjson
import redis
from redis.exceptions import RedisError, ResponseError

from gateway.errors import StoreUnavailable
from gateway.stores import redis_scripts as lua
from gateway.stores.keys import optional_hash
from gateway.stores.outbox import DISCARDED_PREFIX, DeadLetterFilter, ItemId, OutboxItem, OutboxRow

ID_TTL_S = 14 * 24 * 3600
MAX_REMEMBERED_KEYS = 200_000
T = TypeVar("T")


@contextmanager
def translate_redis_errors(action: str) -> Iterator[None]:
    try:
        yield
    except RedisError as exc:
        raise StoreUnavailable(f"redis unavailable while {action}: {exc}") from exc


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def split_id(item_id: ItemId) -> tuple[str, str]:
    """``<adapter>:<stream id>`` -> (adapter, stream id)."""
    adapter, _, entry = str(item_id).rpartition(":")
    return adapter, entry


class RedisOutbox:
    def __init__(self, client: redis.Redis, *, prefix: str = "sgw", consumer: str, lease_s: float = 300.0,
                 key_secret: bytes | None = None) -> None:
        self._redis = client
        self._prefix = prefix
        self._consumer = consumer
        self._lease_ms = int(lease_s * 1000)
        self._secret = key_secret
        self._groups: set[str] = set()
        # entry id -> business key hash of what this outbox claimed, so completing needs no read-back
        self._claimed_keys: dict[str, str] = {}
        self._scripts = {name: client.register_script(getattr(lua, name))
                         for name in ("PUT", "CLAIM", "COMPLETE", "RETRY", "DEAD", "REDRIVE")}

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> RedisOutbox:
        return cls(redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5), **kwargs)

    def key(self, adapter: str, name: str) -> str:
        return f"{self._prefix}:outbox:{{{adapter}}}:{name}"

    def _keys(self, adapter: str) -> list[str]:
        return [self.key(adapter, n) for n in ("stream", "retry", "owners", "dead")] + [self.key(adapter, "")]

    def _ensure_group(self, adapter: str) -> None:
        if adapter in self._groups:
            return
        try:
            self._redis.xgroup_create(self.key(adapter, "stream"), adapter, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):  # an existing group is what we want
                raise
        self._groups.add(adapter)

    def _run(self, action: str, fn: Callable[[], T]) -> T:
        with translate_redis_errors(action):
            return fn()

    # -- queueing -------------------------------------------------------------------------------

    def put_many(self, rows: Sequence[OutboxRow]) -> None:
        by_adapter: dict[str, list[str]] = {}
        for r in rows:
            by_adapter.setdefault(r.adapter, []).extend([
                r.record_id, optional_hash(r.kind, r.business_key, self._secret) or "", r.kind,
                r.department or "", r.enqueued_at.astimezone(UTC).isoformat(),
                orjson.dumps(dict(r.payload), default=str).decode()])
        for adapter, args in by_adapter.items():
            def put(adapter: str = adapter, args: list[str] = args) -> None:
                self._ensure_group(adapter)
                stream, prefix = self.key(adapter, "stream"), self.key(adapter, "")
                self._scripts["PUT"](keys=[stream, prefix], args=[ID_TTL_S, *args])
            self._run("queueing records", put)

    def put_rows(self, items: Sequence[OutboxItem]) -> None:
        """Queue rows read back from the SQL relay table (their key is already hashed)."""
        by_adapter: dict[str, list[str]] = {}
        for i in items:
            by_adapter.setdefault(i.adapter, []).extend([
                i.record_id, i.business_key_hash or "", i.kind, i.department or "",
                i.enqueued_at.astimezone(UTC).isoformat(), orjson.dumps(i.payload, default=str).decode()])
        for adapter, args in by_adapter.items():
            def put(adapter: str = adapter, args: list[str] = args) -> None:
                self._ensure_group(adapter)
                stream, prefix = self.key(adapter, "stream"), self.key(adapter, "")
                self._scripts["PUT"](keys=[stream, prefix], args=[ID_TTL_S, *args])
            self._run("handing records to redis", put)

    # -- delivery -------------------------------------------------------------------------------

    def claim(self, adapter: str, limit: int, now: datetime) -> list[OutboxItem]:
        def go() -> list[OutboxItem]:
            self._ensure_group(adapter)
            rows = self._scripts["CLAIM"](keys=self._keys(adapter),
                                          args=[adapter, self._consumer, limit, _ms(now), self._lease_ms])
            return [self._item(adapter, row) for row in rows]
        items = self._run("claiming queued records", go)
        if len(self._claimed_keys) > MAX_REMEMBERED_KEYS:  # entries settled elsewhere: forget, read back
            self._claimed_keys.clear()
        self._claimed_keys.update((str(i.id), i.business_key_hash or "") for i in items)
        return items

    @staticmethod
    def _item(adapter: str, row: list[Any], state: str = "inflight") -> OutboxItem:
        sid, attempts, rid, key, kind, dept, at, payload, err = row
        # orjson reads the payload's bytes as they come: no decoding to str first.
        return OutboxItem(id=f"{adapter}:{_text(sid)}", adapter=adapter, record_id=_text(rid), kind=_text(kind),
                          business_key_hash=_text(key) or None, department=_text(dept) or None,
                          payload=orjson.loads(payload), enqueued_at=datetime.fromisoformat(_text(at)),
                          attempts=int(attempts), state=state, last_error=_text(err) or None)

    def _per_adapter(self, ids: Sequence[ItemId], action: str, script: str, head: list[Any]) -> list[Any]:
        groups: dict[str, list[str]] = {}
        for item_id in ids:
            adapter, entry = split_id(item_id)
            groups.setdefault(adapter, []).append(entry)
        out: list[Any] = []
        for adapter, entries in groups.items():
            def go(adapter: str = adapter, entries: list[str] = entries) -> Any:
                self._ensure_group(adapter)
                return self._scripts[script](keys=self._keys(adapter), args=[adapter, *head, *entries])
            result = self._run(action, go)
            if isinstance(result, list):
                out.extend(f"{adapter}:{_text(r)}" for r in result)
        return out

    def complete(self, ids: Sequence[ItemId]) -> None:
        groups: dict[str, list[str]] = {}
        for item_id in ids:
            adapter, entry = split_id(item_id)
            groups.setdefault(adapter, []).extend((entry, self._claimed_keys.pop(str(item_id), "?")))
        now = _ms(datetime.now(UTC))
        for adapter, pairs in groups.items():
            def go(adapter: str = adapter, pairs: list[str] = pairs) -> Any:
                self._ensure_group(adapter)
                return self._scripts["COMPLETE"](keys=self._keys(adapter), args=[adapter, now, *pairs])
            self._run("marking records delivered", go)

    def retry(self, ids: Sequence[ItemId], next_attempt_at: datetime, error: str) -> None:
        self._per_adapter(ids, "rescheduling records", "RETRY", [_ms(next_attempt_at), error])

    def dead(self, ids: Sequence[ItemId], error: str) -> None:
        for item_id in ids:
            self._claimed_keys.pop(str(item_id), None)
        self._per_adapter(ids, "dead-lettering records", "DEAD", [_ms(datetime.now(UTC)), error])

    # -- ops ------------------------------------------------------------------------------------

    def redrive(self, ids: Sequence[ItemId], now: datetime) -> list[ItemId]:
        """Queue dead letters again as new entries (fresh attempts); returns their new ids."""
        return list(self._per_adapter(ids, "redriving dead letters", "REDRIVE", [ID_TTL_S]))

    def _call(self, action: str, command: str, *args: Any) -> Any:
        with translate_redis_errors(action):
            return self._redis.execute_command(command, *args)  # type: ignore[no-untyped-call]

    def discard(self, ids: Sequence[ItemId], reason: str) -> int:
        removed = 0
        for item_id in ids:
            adapter, entry = split_id(item_id)
            removed += int(self._call("discarding dead letters", "HDEL", self.key(adapter, "dead"), entry))
        return removed

    def adapters(self) -> list[str]:
        pattern = f"{self._prefix}:outbox:{{*}}:stream"
        with translate_redis_errors("listing outboxes"):
            keys: list[Any] = list(self._redis.scan_iter(match=pattern, count=500))
        return sorted(_text(k).split("{", 1)[1].split("}", 1)[0] for k in keys)

    def dead_letters(self, where: DeadLetterFilter, limit: int = 100) -> list[OutboxItem]:
        found: list[OutboxItem] = []
        for adapter in [where.adapter] if where.adapter else self.adapters():
            flat = self._call("listing dead letters", "HGETALL", self.key(adapter, "dead"))
            pairs = flat.items() if isinstance(flat, dict) else zip(flat[::2], flat[1::2], strict=True)
            items = sorted((self._dead_item(adapter, _text(k), v) for k, v in pairs),
                           key=lambda i: split_id(i.id)[1])
            found.extend(i for i in items if where.matches(i))
        return found[:limit]

    def _dead_item(self, adapter: str, entry: str, raw: Any) -> OutboxItem:
        f = orjson.loads(raw)
        return OutboxItem(id=f"{adapter}:{entry}", adapter=adapter, record_id=f["r"], kind=f["n"],
                          business_key_hash=f["k"] or None, department=f["d"] or None,
                          payload=orjson.loads(f["p"]), enqueued_at=datetime.fromisoformat(f["t"]),
                          attempts=int(f["a"]), state="dead", last_error=f["e"])

    def get(self, item_id: ItemId) -> OutboxItem | None:
        """A dead letter by id (other entries are in flight and not looked up one by one)."""
        adapter, entry = split_id(item_id)
        raw = self._call("reading a dead letter", "HGET", self.key(adapter, "dead"), entry)
        return None if raw is None else self._dead_item(adapter, entry, raw)

    def depth(self, adapter: str) -> int:
        """Entries not yet delivered nor dead: pending (in flight, scheduled, waiting) plus unread."""
        def go() -> int:
            self._ensure_group(adapter)
            groups: Any = self._redis.xinfo_groups(self.key(adapter, "stream"))
            for g in groups:
                if _text(g["name"]) == adapter:
                    return int(g["pending"]) + int(g.get("lag") or 0)
            return 0
        return self._run("measuring the outbox", go)

    def ping(self) -> bool:
        try:
            return bool(self._redis.ping())
        except RedisError:
            return False

    def close(self) -> None:
        self._redis.close()


__all__ = ["DISCARDED_PREFIX", "RedisOutbox", "split_id", "translate_redis_errors"]
