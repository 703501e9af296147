"""The REST pull connector against answers the eco contract allows (or a real deployment sends) that
the happy path does not show: charsets, gzip, oversized and malformed bodies,
pages without ``nextCursor``, 410 without a cursor, a token lifetime as text. Over a socket."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp import web

from connectors.base import ConnectorContext, PublishReceipt
from connectors.rest_poll import RestPollConnector
from gateway.envelope import Envelope
from gateway.errors import PayloadError, PermanentError
from tests.peers.eco_rest_server import PATH, EcoRestServer

pytestmark = pytest.mark.integration

POLL_TIMEOUT_S = 10.0


def connector(peer: EcoRestServer, **options: Any) -> RestPollConnector:
    config = RestPollConnector.Config.model_validate(
        {"base_url": peer.base_url, "profile": "eco-rest", "client_id": "sgw", "client_secret": "s3cret",
         "initial_since": "2025-06-01T00:00:00+08:00", "page_size": 3, "backoff_first_s": 0.05, **options})
    return RestPollConnector("sthj-rest", config, ConnectorContext())


class Published:
    """The publish callable: keeps every envelope's items (what ingest would get)."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []

    async def __call__(self, envelope: Envelope) -> PublishReceipt:
        self.items.extend(envelope.payload["items"])
        return PublishReceipt(envelope_id="e", accepted=len(envelope.payload["items"]), rejected=0, duplicate=0)

    def versions(self) -> list[tuple[str, str]]:
        return [(i["id"], i["updatedAt"]) for i in self.items]


async def poll(conn: RestPollConnector, published: Published) -> None:
    try:
        await asyncio.wait_for(conn.poll_once(published), POLL_TIMEOUT_S)
    finally:
        await conn.close()


async def polled(peer: EcoRestServer) -> Published:
    """One poll of a connector with the default options; what it published."""
    published = Published()
    await poll(connector(peer), published)
    return published


async def test_pages_in_the_charset_their_content_type_declares_are_read() -> None:
    peer = EcoRestServer()
    async with peer:
        peer.add(4)
        peer.page_charset = "gb18030"
        published = await polled(peer)
        assert [i["partyName"] for i in published.items] == [r["partyName"] for r in peer.records.values()]
        assert [h.status for h in peer.hits_on(PATH)] == [200, 200]


async def test_gzip_pages_are_read_and_a_page_over_the_size_limit_after_decompression_is_refused() -> None:
    peer = EcoRestServer()
    async with peer:
        peer.add(3)
        peer.gzip_pages = True
        published = await polled(peer)
        assert len(published.items) == 3

        small = connector(peer, max_body_bytes=2_048)  # a 3-item page is ~4 kB of JSON, ~1.5 kB gzipped
        with pytest.raises(PayloadError) as caught:
            await poll(small, Published())
        assert caught.value.code == "PAYLOAD_TOO_LARGE"
        assert "2048" in str(caught.value)
        assert len(peer.hits_on(PATH)) == 2  # refused once, not retried
        assert await small._state.load("poll:penalties") is None  # position unchanged


async def test_malformed_json_in_a_200_is_refused_with_where_it_breaks_and_not_retried() -> None:
    peer = EcoRestServer()
    async with peer:
        peer.add(2)
        peer.raw_replies.append(web.Response(body=b'{"items": [{"id": "X"}, ], "hasMore": false}',
                                             content_type="application/json"))
        conn, published = connector(peer), Published()
        with pytest.raises(PayloadError) as caught:
            await poll(conn, published)
        assert caught.value.code == "JSON_MALFORMED"
        assert "line 1 column" in str(caught.value)
        assert published.items == [] and len(peer.hits_on(PATH)) == 1


async def test_pages_without_next_cursor_continue_by_time_and_the_next_poll_starts_after_the_last_seen() -> None:
    peer = EcoRestServer()
    async with peer:
        ids = peer.add(7)
        peer.omit_next_cursor = True
        conn, published = connector(peer), Published()
        await poll(conn, published)
        assert sorted(published.versions()) == sorted((r["id"], r["updatedAt"]) for r in peer.records.values())
        first_cycle = len(peer.hits_on(PATH))
        assert first_cycle <= 4  # 7 records by 3, each page starting at the last seen change time

        peer.update(ids[2], fineAmount="3.5")
        await poll(conn, published)
        later = peer.hits_on(PATH)[first_cycle:]
        assert later[0].query["updatedSince"] == "2025-06-11T07:55:07+08:00"  # last seen 08:00:07 − 5 min
        assert len(published.items) == 8  # only the new version of ids[2]; nothing re-published
        assert published.items[-1]["id"] == ids[2]


async def test_a_last_page_without_next_cursor_keeps_the_next_poll_from_re_reading_everything() -> None:
    peer = EcoRestServer()
    async with peer:
        peer.add(2)
        peer.omit_next_cursor = True
        conn, published = connector(peer, page_size=10), Published()
        await poll(conn, published)
        await poll(conn, published)
        second = peer.hits_on(PATH)[-1]
        assert second.query["updatedSince"] == "2025-06-11T07:55:02+08:00"
        assert len(published.items) == 2


async def test_410_on_a_request_by_time_is_permanent_not_a_restart_loop() -> None:
    peer = EcoRestServer()
    async with peer:
        peer.add(1)
        peer.fail(PATH, 410, times=20, body={"code": "CURSOR_EXPIRED", "message": "游标已过期"})
        conn = connector(peer)
        with pytest.raises(PermanentError, match="410"):
            await poll(conn, Published())
        assert len(peer.hits_on(PATH)) == 1


async def test_a_token_lifetime_sent_as_a_numeric_string_is_accepted() -> None:
    peer = EcoRestServer()
    async with peer:
        peer.add(1)
        peer.expires_in_as_text = True
        published = await polled(peer)
        assert len(published.items) == 1 and peer.token_requests == 1



async def test_a_200_that_is_not_a_page_is_retried_not_read_as_an_empty_last_page() -> None:
    # PenaltyPage requires items: an error body or a proxy's JSON sent with 200 is no page. Read as
    # an empty last page, it ended the sync there and moved the cursor; it is retried instead.
    peer = EcoRestServer()
    async with peer:
        peer.add(2)
        peer.raw_replies.append(web.json_response({"code": "MAINTENANCE", "message": "系统维护中"}))
        published = Published()
        conn = connector(peer)
        await poll(conn, published)
        assert len(published.items) == 2
        assert [h.status for h in peer.hits_on(PATH)] == [200, 200]
        assert conn.stats.failures == 1
