"""The REST pull connector with the 12315 and 双公示 v2 profiles against their peers, ending in
ex_complaint / ex_credit_penalty / ex_credit_license."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from connectors.base import ConnectorContext
from connectors.rest_poll import RestPollConnector
from gateway.errors import PermanentError
from tests.peers.credit_v2_server import CreditV2Server
from tests.peers.gateway_harness import ex_rows, make_runtime, running, wait_for
from tests.peers.hotline12315_server import CLOCK_START, FORMAT, PATH, Hotline12315Server, templates

pytestmark = pytest.mark.integration

PROVIDER = "11330000002500009H"


def standalone(entry: dict[str, Any]) -> RestPollConnector:
    return RestPollConnector(entry["id"], RestPollConnector.Config.model_validate(entry["options"]),
                             ConnectorContext())


async def refuse(envelope: Any) -> Any:
    raise AssertionError("nothing may be published")


def hotline_connector(base_url: str, **options: Any) -> dict[str, Any]:
    return {"id": "hotline-12315", "type": "rest_poll", "mapping": "hotline-12315.case",
            "meta": {"provider_uscc": PROVIDER},
            "options": {"base_url": base_url, "profile": "hotline-12315", "client_id": "sgw-app",
                        "client_secret": "app-s3cret", "params": {"region": "3301"},
                        "initial_since": INITIAL_12315.isoformat(), "page_size": 2, "poll_interval_s": 3600,
                        "backoff_first_s": 0.05, **options}}


INITIAL_12315 = (CLOCK_START - timedelta(days=10)).replace(tzinfo=timezone(timedelta(hours=8)))


def credit_connector(base_url: str, **options: Any) -> dict[str, Any]:
    return {"id": "xypt", "type": "rest_poll",
            "mappings": {"license-v2": "credit-publication.license-v2", "penalty-v2": "credit-publication.penalty-v2"},
            "options": {"base_url": base_url, "profile": "credit-v2", "api_key": "sgw-credit-key",
                        "initial_since": "2025-06-01T00:00:00+08:00", "page_size": 2, "poll_interval_s": 3600,
                        "backoff_first_s": 0.05, **options}}


async def test_12315_cases_become_complaints_and_personal_data_never_reaches_the_log(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with Hotline12315Server() as peer:
        numbers = peer.add(5)
        peer.fail(PATH, 429, retry_after="1", body={"code": 42900, "msg": "请求过于频繁，请稍后再试", "data": None})
        runtime = make_runtime(tmp_path, [hotline_connector(peer.base_url)])
        async with running(runtime):
            connector = runtime.assembly.connectors["hotline-12315"]
            await wait_for(lambda: connector.stats.cycles >= 1, what="the first run")
            first = [h for h in peer.hits_on(PATH) if h.status == 200]
            assert [h.query["page"] for h in first] == ["1", "2", "3"]
            assert first[0].query["modifiedSince"] == INITIAL_12315.strftime(FORMAT)
            peer.expire_tokens()
            peer.update(numbers[2], resultText="经复核，处理结果已更新。")
            connector.wake()
            await wait_for(lambda: connector.stats.cycles >= 2, what="the next run")
            second = peer.hits_on(PATH)[len(first) + 1:]
            # the next run starts at the last run's max(modifiedTime) − 60 s, after one token refresh
            assert [h.status for h in second] == [401, 200, 200, 200]
            assert second[1].query["modifiedSince"] == (CLOCK_START + timedelta(seconds=5 - 60)).strftime(FORMAT)
            assert connector.stats.duplicates_dropped == 4  # the overlap re-reads the 4 unchanged cases
            await runtime.drain()
        assert peer.token_requests == 2
        assert connector.stats.rate_limited == 1
    rows = ex_rows(tmp_path, "ex_complaint")
    assert sorted(r[2] for r in rows) == sorted([*numbers, numbers[2]])
    personal = [v for case in templates() for v in (case["complainant"] or {}).values() if v and len(v) > 1]
    assert personal  # the samples carry names, phones and addresses
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert not [v for v in personal if v in logged]
    assert "app-s3cret" not in logged


async def test_12315_bad_app_secret_is_permanent_after_one_token_request(tmp_path: Path) -> None:
    async with Hotline12315Server() as peer:
        peer.add(1)
        connector = standalone(hotline_connector(peer.base_url, client_secret="nope"))
        with pytest.raises(PermanentError):
            await connector.poll_once(refuse)
        await connector.close()
        assert peer.token_requests == 1


async def test_12315_a_start_older_than_31_days_is_moved_up_instead_of_stopping_the_connector() -> None:
    # Contract: modifiedSince "≤ 31 days ago" (40001 beyond, which is permanent): an old initial_since
    # or an outage longer than that must not stop the connector for good.
    async with Hotline12315Server() as peer:
        numbers = peer.add(3)
        connector = standalone(hotline_connector(peer.base_url, initial_since="2025-06-01T00:00:00+08:00"))
        published: list[Any] = []

        async def keep(envelope: Any) -> Any:
            published.extend(envelope.payload["data"]["list"])
            return await refuse_nothing(envelope)

        before = datetime.now(UTC)
        await connector.poll_once(keep)
        await connector.close()
    asked = datetime.strptime(peer.hits_on(PATH)[0].query["modifiedSince"], FORMAT)
    beijing_now = before.replace(tzinfo=None) + timedelta(hours=8)
    assert beijing_now - timedelta(days=31) < asked < beijing_now - timedelta(days=30)
    assert sorted(c["caseNo"] for c in published) == sorted(numbers)


async def test_12315_a_run_that_finds_nothing_moves_the_next_runs_start(tmp_path: Path) -> None:
    async with Hotline12315Server() as peer:
        connector = standalone(hotline_connector(peer.base_url))
        started = datetime.now(UTC)
        await connector.poll_once(refuse)  # nothing there yet
        numbers = peer.add(1)
        now_beijing = datetime.now(UTC).replace(tzinfo=None) + timedelta(hours=8)
        peer.cases[numbers[0]]["modifiedTime"] = now_beijing.strftime(FORMAT)  # changed after the empty run
        published: list[Any] = []

        async def keep(envelope: Any) -> Any:
            published.extend(envelope.payload["data"]["list"])
            return await refuse_nothing(envelope)

        await connector.poll_once(keep)
        await connector.close()
    first, second = (h.query["modifiedSince"] for h in peer.hits_on(PATH) if h.status == 200)
    assert first == INITIAL_12315.strftime(FORMAT)
    # from when the empty run began, less the 60 s overlap (Beijing time), not the initial time again
    expected = started.replace(tzinfo=None) + timedelta(hours=8) - timedelta(seconds=60)
    assert abs(datetime.strptime(second, FORMAT) - expected) <= timedelta(seconds=2)
    assert [c["caseNo"] for c in published] == numbers


async def refuse_nothing(envelope: Any) -> Any:
    from connectors.base import PublishReceipt

    return PublishReceipt(envelope.envelope_id, accepted=len(envelope.payload["data"]["list"]), rejected=0,
                          duplicate=0)


async def test_credit_v2_pages_of_both_items_reach_their_tables_and_body_errors_are_honoured(tmp_path: Path) -> None:
    async with CreditV2Server() as peer:
        xk = peer.add("xk", 3)
        cf = peer.add("cf", 4)
        peer.fail_body("cf", "500")  # HTTP 200 carrying a transient error
        runtime = make_runtime(tmp_path, [credit_connector(peer.base_url)])
        async with running(runtime):
            connector = runtime.assembly.connectors["xypt"]
            await wait_for(lambda: connector.stats.cycles >= 1, what="the first run")
            await runtime.drain()
        assert connector.stats.failures == 1
        assert [h.query["pageNum"] for h in peer.hits_on("/sgs/api/v2/cf")] == ["1", "1", "2"]
    assert sorted(r[2] for r in ex_rows(tmp_path, "ex_credit_license")) == sorted(xk)
    assert sorted(r[2] for r in ex_rows(tmp_path, "ex_credit_penalty")) == sorted(cf)


async def test_credit_v2_bad_key_in_a_200_body_is_permanent(tmp_path: Path) -> None:
    async with CreditV2Server(api_key="other") as peer:
        connector = standalone(credit_connector(peer.base_url))
        with pytest.raises(PermanentError, match="code 401"):
            await connector.poll_once(refuse)
        await connector.close()
        assert len(peer.hits) == 1
