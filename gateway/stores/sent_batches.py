"""The batch journal (``adapters.journal``) on the gateway's stores: a SQL table, or Redis.

One journal per adapter. SQL: the ``sent_batches`` table, a row per batch. Redis, under
``<prefix>:journal:{<adapter>}:``: ``ids`` (hash, batch id -> sent time in ms, a line feed, the
record ids one per line) and ``bodies`` (hash, batch id -> the body), written together in one
MULTI. ``recall`` reads every batch's ids and the bodies of the matching ones: the journal holds
only the batches on their way (a handful per worker) and the few a retry has not yet settled.
"""

from __future__ import annotations

from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from datetime import UTC, datetime

import redis
from sqlalchemy import Engine, delete, insert, select

from adapters.journal import SentBatch
from gateway.stores.db import translate_errors
from gateway.stores.redis_outbox import translate_redis_errors
from gateway.stores.schema import sent_batches


class SqlBatchJournal:
    def __init__(self, engine: Engine, adapter: str) -> None:
        self._engine = engine
        self._adapter = adapter

    def remember(self, batch: SentBatch, now: datetime) -> None:
        t = sent_batches
        with translate_errors("journaling a sent batch"), self._engine.begin() as conn:
            conn.execute(delete(t).where(t.c.adapter == self._adapter, t.c.batch_id == batch.batch_id))
            conn.execute(insert(t).values(adapter=self._adapter, batch_id=batch.batch_id,
                                          record_ids="\n".join(batch.record_ids), body=batch.body, sent_at=now))

    def recall(self, record_ids: AbstractSet[str]) -> list[SentBatch]:
        t = sent_batches
        with translate_errors("reading the batch journal"), self._engine.connect() as conn:
            rows = conn.execute(select(t.c.batch_id, t.c.record_ids).where(t.c.adapter == self._adapter)).all()
            hits = {batch_id: tuple(ids.split("\n")) for batch_id, ids in rows
                    if not record_ids.isdisjoint(ids.split("\n"))}
            if not hits:
                return []
            bodies: dict[str, bytes] = {batch_id: body for batch_id, body in conn.execute(select(
                t.c.batch_id, t.c.body).where(t.c.adapter == self._adapter, t.c.batch_id.in_(list(hits))))}
        return [SentBatch(batch_id, ids, bytes(bodies[batch_id])) for batch_id, ids in hits.items()
                if batch_id in bodies]

    def forget(self, batch_ids: Sequence[str]) -> None:
        if not batch_ids:
            return
        t = sent_batches
        with translate_errors("clearing the batch journal"), self._engine.begin() as conn:
            conn.execute(delete(t).where(t.c.adapter == self._adapter, t.c.batch_id.in_(list(batch_ids))))

    def prune(self, before: datetime) -> int:
        t = sent_batches
        with translate_errors("pruning the batch journal"), self._engine.begin() as conn:
            return conn.execute(delete(t).where(t.c.adapter == self._adapter, t.c.sent_at < before)).rowcount


class RedisBatchJournal:
    def __init__(self, client: redis.Redis, *, prefix: str, adapter: str) -> None:
        self._redis = client
        base = f"{prefix}:journal:{{{adapter}}}:"
        self._ids, self._bodies = base + "ids", base + "bodies"

    @classmethod
    def from_url(cls, url: str, *, prefix: str, adapter: str) -> RedisBatchJournal:
        return cls(redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5), prefix=prefix,
                   adapter=adapter)

    def close(self) -> None:
        self._redis.close()

    def remember(self, batch: SentBatch, now: datetime) -> None:
        head = str(int(now.timestamp() * 1000))
        with translate_redis_errors("journaling a sent batch"), self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(self._ids, batch.batch_id, "\n".join((head, *batch.record_ids)))
            pipe.hset(self._bodies, items=[batch.batch_id, batch.body])
            pipe.execute()

    def _entries(self) -> dict[str, tuple[int, tuple[str, ...]]]:
        out = {}
        for batch_id, value in self._redis.hgetall(self._ids).items():  # type: ignore[union-attr]
            head, *ids = value.decode().split("\n")
            out[batch_id.decode()] = (int(head), tuple(ids))
        return out

    def recall(self, record_ids: AbstractSet[str]) -> list[SentBatch]:
        with translate_redis_errors("reading the batch journal"):
            hits = {batch_id: ids for batch_id, (_, ids) in self._entries().items()
                    if not record_ids.isdisjoint(ids)}
            if not hits:
                return []
            bodies: list[bytes | None] = self._redis.hmget(self._bodies, list(hits))  # type: ignore[assignment]
        return [SentBatch(batch_id, ids, body) for (batch_id, ids), body in zip(hits.items(), bodies, strict=True)
                if body is not None]

    def forget(self, batch_ids: Sequence[str]) -> None:
        if not batch_ids:
            return
        with translate_redis_errors("clearing the batch journal"), self._redis.pipeline(transaction=True) as pipe:
            pipe.hdel(self._ids, *batch_ids)
            pipe.hdel(self._bodies, *batch_ids)
            pipe.execute()

    def prune(self, before: datetime) -> int:
        limit = int(before.astimezone(UTC).timestamp() * 1000)
        with translate_redis_errors("pruning the batch journal"):
            old = [batch_id for batch_id, (at, _) in self._entries().items() if at < limit]
        self.forget(old)
        return len(old)
