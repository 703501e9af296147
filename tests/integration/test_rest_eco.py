"""The REST pull connector against the eco API peer over a socket, ending in ex_penalty."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path
from typing import Any

import pytest

from connectors.base import ConnectorContext
from connectors.rest_poll import RestPollConnector
from gateway.errors import PermanentError
from tests.peers.eco_rest_server import PATH, EcoRestServer
from tests.peers.gateway_harness import ex_rows, make_runtime, running, wait_for

pytestmark = pytest.mark.integration


def eco_connector(base_url: str, **options: Any) -> dict[str, Any]:
    return {"id": "sthj-rest", "type": "rest_poll", "mapping": "eco-rest.penalty",
            "options": {"base_url": base_url, "profile": "eco-rest", "client_id": "sgw", "client_secret": "s3cret",
                        "initial_since": "2025-06-01T00:00:00+08:00", "page_size": 3, "poll_interval_s": 3600,
                        "backoff_first_s": 0.05, **options}}


async def test_full_sync_over_pages_then_an_incremental_poll_after_updates(tmp_path: Path) -> None:
    async with EcoRestServer() as peer:
        ids = peer.add(7)
        runtime = make_runtime(tmp_path, [eco_connector(peer.base_url)])
        async with running(runtime):
            connector = runtime.assembly.connectors["sthj-rest"]
            await wait_for(lambda: connector.stats.cycles >= 1, what="the first sync")
            first_pages = peer.hits_on(PATH)
            assert [h.query.get("cursor") is None for h in first_pages] == [True, False, False]
            assert "updatedSince" in first_pages[0].query
            saved = await connector._state.load("poll:penalties")
            assert saved["cursor"]

            peer.update(ids[1], fineAmount="1.5")
            peer.update(ids[4], status="revoked")
            peer.add(1)
            connector.wake()
            await wait_for(lambda: connector.stats.cycles >= 2, what="the incremental poll")
            incremental = peer.hits_on(PATH)[len(first_pages):]
            assert [h.query["cursor"] for h in incremental] == [saved["cursor"]]  # only later changes, one page
            await runtime.drain()
        assert peer.token_requests == 1
    rows = ex_rows(tmp_path, "ex_penalty")
    assert len(rows) == 10  # 7 first versions + 2 updates + 1 new
    by_source: dict[str, list[str]] = {}
    for _cd_id, operation, source_id in rows:
        by_source.setdefault(source_id, []).append(operation)
    assert sorted(by_source[ids[1]]) == ["i", "u"]
    assert sorted(by_source[ids[4]]) == ["d", "i"]
    assert len({r[0] for r in rows}) == len(rows)
    assert connector.stats.records == 10 and connector.stats.failures == 0


async def test_a_token_expiring_mid_sync_is_refreshed_once_and_the_sync_completes(tmp_path: Path) -> None:
    async with EcoRestServer() as peer:
        peer.add(9)
        peer.expire_tokens_after_pages = 1  # the source invalidates the token between page 1 and page 2
        runtime = make_runtime(tmp_path, [eco_connector(peer.base_url)])
        async with running(runtime):
            connector = runtime.assembly.connectors["sthj-rest"]
            await wait_for(lambda: connector.stats.cycles >= 1, what="the sync")
            await runtime.drain()
        assert peer.token_requests == 2
        assert connector.stats.token_refreshes == 1
        assert [h.status for h in peer.hits_on(PATH)][:3] == [200, 401, 200]
    assert len(ex_rows(tmp_path, "ex_penalty")) == 9


async def test_429_waits_exactly_retry_after_and_is_not_a_failure(tmp_path: Path) -> None:
    async with EcoRestServer() as peer:
        peer.add(2)
        peer.fail(PATH, 429, retry_after="1", body={"code": "RATE_LIMITED", "message": "请求过于频繁"})
        runtime = make_runtime(tmp_path, [eco_connector(peer.base_url)])
        async with running(runtime):
            connector = runtime.assembly.connectors["sthj-rest"]
            await wait_for(lambda: connector.stats.cycles >= 1, what="the sync")
            await runtime.drain()
        limited, served = peer.hits_on(PATH)[:2]
        assert (limited.status, served.status) == (429, 200)
        assert 1.0 <= served.at - limited.at < 1.8
        assert connector.stats.rate_limited == 1 and connector.stats.failures == 0
    assert len(ex_rows(tmp_path, "ex_penalty")) == 2


async def test_5xx_backs_off_exponentially_with_the_cursor_unchanged_then_succeeds(tmp_path: Path) -> None:
    async with EcoRestServer() as peer:
        peer.add(4)
        runtime = make_runtime(tmp_path, [eco_connector(peer.base_url, backoff_first_s=0.2)])
        connector = runtime.assembly.connectors["sthj-rest"]
        cursors_seen_during_failures: list[Any] = []

        async with running(runtime):
            await wait_for(lambda: connector.stats.cycles >= 1, what="the first sync")
            before = await connector._state.load("poll:penalties")
            peer.add(2)
            peer.fail(PATH, 500)
            peer.fail(PATH, 502, html=True)
            peer.fail(PATH, 504, html=True)
            peer.fail(PATH, 503, retry_after="1", body={"code": "MAINTENANCE", "message": "系统维护中"})
            connector.wake()
            await wait_for(lambda: len(peer.hits_on(PATH)) >= 4, what="the failures")
            cursors_seen_during_failures.append((await connector._state.load("poll:penalties"))["cursor"])
            await wait_for(lambda: connector.stats.cycles >= 2, what="the recovery")
            await runtime.drain()
        hits = peer.hits_on(PATH)[2:]
        assert [h.status for h in hits] == [500, 502, 504, 503, 200]
        assert {h.query["cursor"] for h in hits} == {before["cursor"]}
        assert cursors_seen_during_failures == [before["cursor"]]
        gaps = [b.at - a.at for a, b in itertools.pairwise(hits)]
        assert 0.16 <= gaps[0] < 0.7 and 0.32 <= gaps[1] < 0.9 and 0.64 <= gaps[2] < 1.3  # 0.2, 0.4, 0.8 − jitter
        assert gaps[0] < gaps[2]
        assert 1.0 <= gaps[3] < 1.8  # 503 with Retry-After: 1
        assert connector.stats.failures == 4
    assert len(ex_rows(tmp_path, "ex_penalty")) == 6


async def test_an_expired_cursor_restarts_from_last_seen_minus_5_min_without_duplicates(tmp_path: Path) -> None:
    async with EcoRestServer() as peer:
        ids = peer.add(5)
        runtime = make_runtime(tmp_path, [eco_connector(peer.base_url)])
        async with running(runtime):
            connector = runtime.assembly.connectors["sthj-rest"]
            await wait_for(lambda: connector.stats.cycles >= 1, what="the first sync")
            peer.expire_cursors()
            peer.update(ids[0], fineAmount="2.5")
            connector.wake()
            await wait_for(lambda: connector.stats.cycles >= 2, what="the restart")
            await runtime.drain()
        restart = peer.hits_on(PATH)[-3:]
        assert restart[0].status == 410
        assert restart[1].query["updatedSince"] == "2025-06-11T07:55:05+08:00"  # last seen 08:00:05 − 5 min
        assert connector.stats.cursor_restarts == 1
        assert connector.stats.duplicates_dropped == 4  # the 4 unchanged versions re-read, dropped by (id, updatedAt)
    rows = ex_rows(tmp_path, "ex_penalty")
    assert len(rows) == 6 and len({r[0] for r in rows}) == 6
    assert sorted(r[1] for r in rows if r[2] == ids[0]) == ["i", "u"]


async def test_a_bad_client_secret_stops_the_connector_after_one_token_request(tmp_path: Path) -> None:
    async with EcoRestServer() as peer:
        peer.add(1)
        runtime = make_runtime(tmp_path, [eco_connector(peer.base_url, client_secret="wrong")])
        async with running(runtime):
            connector = runtime.assembly.connectors["sthj-rest"]
            await wait_for(lambda: peer.token_requests >= 1, what="the token request")
            await asyncio.sleep(0.5)  # the supervisor would restart a crashed connector within ~1 s
            assert not runtime.live.running("sthj-rest")  # stopped by the supervisor, not restarted
            assert runtime.live.status("sthj-rest")["state"] == "failed"
        direct = RestPollConnector("sthj-rest", connector.config, ConnectorContext())
        with pytest.raises(PermanentError) as caught:
            await direct.run(runtime.publisher)
        assert "wrong" not in str(caught.value)
        assert peer.token_requests == 2  # one per run: no spinning
        assert peer.hits_on(PATH) == []


async def test_a_400_from_the_listing_is_permanent(tmp_path: Path) -> None:
    async with EcoRestServer() as peer:
        connector = RestPollConnector("sthj-rest", RestPollConnector.Config.model_validate(
            eco_connector(peer.base_url, page_size=500)["options"] | {"page_size": 501}), ConnectorContext())
        assert connector._pager.page_size == 500  # clamped to the profile's maximum
        peer.fail(PATH, 403, body={"code": "FORBIDDEN", "message": "scope"})

        async def never(envelope: Any) -> Any:
            raise AssertionError("nothing to publish")

        with pytest.raises(PermanentError, match="403"):
            await connector.poll_once(never)
        await connector.close()
