"""The outbox on Redis Streams: one stream and one consumer group per adapter.

Keys (one adapter's share the hash tag ``{adapter}``), under ``<prefix>:outbox:{<adapter>}:``:

- ``stream``: the entries (record id, business key hash, the record's field in ``records``); the
  group is named after the adapter, every worker is a consumer of it;
- ``records``: hash, record field -> ``[kind, department, enqueued at]`` as JSON, a line feed and the
  payload as JSON. Written with HSET before the entry is added, read with HMGET after the claim,
  deleted once the entry is done: the scripts never copy a payload (see ``redis_scripts``). Every
  queueing call writes to fields of its own (a random token), so a record queued again never
  touches the first copy. The payload is handed out as a ``JsonRecord`` that keeps its JSON, its
  fields read only when something looks at them;
- ``retry``: zset, entry id -> due time (ms) of a rescheduled entry, durably (not in memory);
- ``owners``: hash, business key hash -> the entry now on its way for that key; a later version
  read meanwhile waits in ``held:<key>`` (a list) and is scheduled when the owner settles;
- ``dead``: hash, entry id -> the dead letter (fields, record, attempts, error) as JSON;
- ``id:<record_id>``: idempotency: set when the record was queued, so queueing the same record
  again (the relay after a crash) adds nothing;
- ``errors``: hash, entry id -> last error of a rescheduled entry.

Attempts are the group's delivery count: XREADGROUP and XCLAIM raise it, a crashed worker's
entries are reclaimed with XCLAIM after ``lease_s`` of idleness and keep it. The stream is trimmed
(``XTRIM MINID``) only below the oldest pending entry and the group's read cursor, so an entry
not yet delivered is never dropped. Redis must persist (AOF, ``appendfsync everysec`` or
``always``) for entries to survive a Redis restart; see ``durable.py`` for what is acknowledged.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

import orjson
import redis
from redis.exceptions import NoScriptError, RedisError, ResponseError

from adapters.base import JsonRecord
from gateway.errors import StoreUnavailable
from gateway.stores import redis_scripts as lua
from gateway.stores.keys import optional_hash
from gateway.stores.outbox import DISCARDED_PREFIX, DeadLetterFilter, ItemId, OutboxItem, OutboxRow

ID_TTL_S = 14 * 24 * 3600
MAX_REMEMBERED_KEYS = 200_000
# Records per HSET: hiredis packs a command into one buffer that grows by 1 MB steps past 1 MB,
# so a command of thousands of records costs more to pack than to send.
HSET_CHUNK = 200
T = TypeVar("T")
# One queueing call's records: (record id, business key hash or "", the record's JSON).
Queued = tuple[str, str, bytes]
_UNKNOWN = ("?", "?")  # neither key nor record field known: COMPLETE reads them from the entry


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


def record_json(kind: str, department: str | None, enqueued_at: str, payload: Mapping[str, Any]) -> bytes:
    """What ``records`` holds for one entry: ``[kind, department or "", enqueued at]``, a line feed
    (compact JSON has none of its own), and the payload, whose bytes then reach the adapter as they
    are (``JsonRecord.json``)."""
    body = payload if isinstance(payload, dict) else dict(payload)
    return orjson.dumps([kind, department or "", enqueued_at]) + b"\n" + orjson.dumps(body, default=str)


def read_record(stored: bytes) -> tuple[str, str | None, str, JsonRecord]:
    """``record_json`` read back: kind, department, enqueued at (ISO text), payload."""
    head, _, body = stored.partition(b"\n")
    kind, department, enqueued_at = orjson.loads(head)
    return kind, department or None, enqueued_at, JsonRecord(orjson.loads(body), body)


class _IsoTimes:
    """ISO texts of the enqueue times of one call: the rows of a batch mostly share one."""

    def __init__(self) -> None:
        self._seen: dict[datetime, str] = {}

    def __call__(self, moment: datetime) -> str:
        text = self._seen.get(moment)
        if text is None:
            text = self._seen[moment] = moment.astimezone(UTC).isoformat()
        return text


class RedisOutbox:
    def __init__(self, client: redis.Redis, *, prefix: str = "sgw", consumer: str, lease_s: float = 300.0,
                 key_secret: bytes | None = None) -> None:
        self._redis = client
        self._prefix = prefix
        self._consumer = consumer
        self._lease_ms = int(lease_s * 1000)
        self._secret = key_secret
        self._groups: set[str] = set()
        # entry id -> (business key hash, record field) of what this outbox claimed, so completing
        # needs no read-back
        self._claimed: dict[str, tuple[str, str]] = {}
        self._scripts = {name: client.register_script(getattr(lua, name))
                         for name in ("PUT", "CLAIM", "COMPLETE", "RETRY", "DEAD", "REDRIVE")}

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> RedisOutbox:
        return cls(redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5), **kwargs)

    def key(self, adapter: str, name: str) -> str:
        return f"{self._prefix}:outbox:{{{adapter}}}:{name}"

    def _keys(self, adapter: str) -> list[str]:
        return [self.key(adapter, n) for n in ("stream", "retry", "owners", "dead", "", "records")]

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
        by_adapter: dict[str, list[Queued]] = {}
        iso = _IsoTimes()
        for r in rows:
            by_adapter.setdefault(r.adapter, []).append((
                r.record_id, optional_hash(r.kind, r.business_key, self._secret) or "",
                record_json(r.kind, r.department, iso(r.enqueued_at), r.payload)))
        self._queue_all("queueing records", by_adapter)

    def put_rows(self, items: Sequence[OutboxItem]) -> None:
        """Queue rows read back from the SQL relay table (their key is already hashed)."""
        by_adapter: dict[str, list[Queued]] = {}
        iso = _IsoTimes()
        for i in items:
            by_adapter.setdefault(i.adapter, []).append((
                i.record_id, i.business_key_hash or "",
                record_json(i.kind, i.department, iso(i.enqueued_at), i.payload)))
        self._queue_all("handing records to redis", by_adapter)

    def _queue_all(self, action: str, by_adapter: Mapping[str, Sequence[Queued]]) -> None:
        for adapter, queued in by_adapter.items():
            with translate_redis_errors(action):
                self._queue(adapter, queued)

    def _queue(self, adapter: str, queued: Sequence[Queued]) -> None:
        """The records first (HSET, fields of this call's own), then the entries (PUT): one round trip.
        Lost between the two, a record is only an unused field; its entry never lacks the record."""
        self._ensure_group(adapter)
        token = secrets.token_hex(12)
        fields: list[Any] = []
        args: list[Any] = [ID_TTL_S]
        for n, (record_id, key, body) in enumerate(queued):
            field = f"{token}.{n}"
            fields += (field, body)
            args += (record_id, key, field)
        script = self._scripts["PUT"]
        for attempt in range(2):
            pipe = self._redis.pipeline(transaction=False)
            for start in range(0, len(fields), 2 * HSET_CHUNK):
                pipe.hset(self.key(adapter, "records"), items=fields[start:start + 2 * HSET_CHUNK])
            pipe.execute_command(  # type: ignore[no-untyped-call]
                "EVALSHA", script.sha, 2, self.key(adapter, "stream"), self.key(adapter, ""), *args)
            try:
                pipe.execute()
                return
            except NoScriptError:  # Redis restarted or its scripts flushed: load and send again
                if attempt:
                    raise
                script.sha = str(self._redis.script_load(script.script))

    # -- delivery -------------------------------------------------------------------------------

    def claim(self, adapter: str, limit: int, now: datetime) -> list[OutboxItem]:
        if len(self._claimed) > MAX_REMEMBERED_KEYS:  # entries settled elsewhere: forget, read back
            self._claimed.clear()

        def go() -> list[OutboxItem]:
            self._ensure_group(adapter)
            flat = self._scripts["CLAIM"](keys=self._keys(adapter),
                                          args=[adapter, self._consumer, limit, _ms(now), self._lease_ms])
            if not flat:
                return []
            bodies: list[bytes | None] = self._redis.hmget(self.key(adapter, "records"), flat[5::6])  # type: ignore[assignment]
            return self._items(adapter, flat, bodies)
        return self._run("claiming queued records", go)

    def _items(self, adapter: str, flat: list[Any], bodies: Iterable[bytes | None]) -> list[OutboxItem]:
        """CLAIM's rows (six values each) and their records -> items. A record gone meanwhile belongs
        to an entry that the worker it was reclaimed from has completed: that entry is done.

        The payload is left unread (``JsonRecord.unread``): an adapter sending it as JSON sends its
        bytes, one that looks at the fields reads them then. The heads of a batch's records, mostly
        a few envelopes', are read once."""
        items: list[OutboxItem] = []
        heads: dict[bytes, tuple[str, str | None, datetime]] = {}
        claimed = self._claimed
        for row, stored in enumerate(bodies):
            if stored is None:
                continue
            entry, attempts, record_id, key, error, field = flat[row * 6:row * 6 + 6]
            head, _, body = stored.partition(b"\n")
            known = heads.get(head)
            if known is None:
                kind, department, at = orjson.loads(head)
                known = heads[head] = (kind, department or None, datetime.fromisoformat(at))
            item_id = f"{adapter}:{entry.decode()}"
            key_hash = key.decode()
            items.append(OutboxItem(item_id, adapter, record_id.decode(), known[0], key_hash or None, known[1],
                                    JsonRecord.unread(body), known[2], attempts, "inflight", error.decode() or None))
            claimed[item_id] = (key_hash, field.decode())
        return items

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
            groups.setdefault(adapter, []).extend((entry, *self._claimed.pop(str(item_id), _UNKNOWN)))
        now = _ms(datetime.now(UTC))
        for adapter, triples in groups.items():
            def go(adapter: str = adapter, triples: list[str] = triples) -> Any:
                self._ensure_group(adapter)
                return self._scripts["COMPLETE"](keys=self._keys(adapter), args=[adapter, now, *triples])
            self._run("marking records delivered", go)

    def retry(self, ids: Sequence[ItemId], next_attempt_at: datetime, error: str) -> None:
        self._per_adapter(ids, "rescheduling records", "RETRY", [_ms(next_attempt_at), error])

    def dead(self, ids: Sequence[ItemId], error: str) -> None:
        for item_id in ids:
            self._claimed.pop(str(item_id), None)
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
        if "v" in f:
            kind, department, at, payload = read_record(f["v"].encode())
        else:  # dead before the records hash: the entry's fields inline
            kind, department, at, payload = f["n"], f["d"], f["t"], orjson.loads(f["p"])
        return OutboxItem(id=f"{adapter}:{entry}", adapter=adapter, record_id=f["r"], kind=kind,
                          business_key_hash=f["k"] or None, department=department or None,
                          payload=payload, enqueued_at=datetime.fromisoformat(at),
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
