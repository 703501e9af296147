"""Units of the REST pull connector: pacing, answer classification, paging and dedupe, profiles."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from connectors.base import ConnectorContext
from connectors.rest.client import Answer, CursorExpired, RateLimited, TokenRejected, page_of
from connectors.rest.limits import Backoff, TokenBucket
from connectors.rest.paging import Pager, PollState
from connectors.rest.profile import BodyStatusProfile, builtin_profile, builtin_profile_names
from connectors.rest_poll import RestPollConnector
from gateway.errors import ConfigError, PermanentError, SourceUnavailable, retry_after_s

CST = datetime.fromisoformat("2025-06-11T08:00:00+08:00").tzinfo


def test_backoff_doubles_from_the_first_delay_up_to_five_minutes_with_bounded_jitter() -> None:
    exact = Backoff(1.0, 300.0, jitter=0.2, rand=lambda: 0.0)
    assert [exact.next_delay_s() for _ in range(11)] == [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]
    jittered = Backoff(1.0, 300.0, jitter=0.2, rand=lambda: 1.0)
    assert jittered.next_delay_s() == pytest.approx(0.8)
    exact.reset()
    assert exact.next_delay_s() == 1


def test_token_bucket_allows_a_burst_then_paces() -> None:
    now = [0.0]
    bucket = TokenBucket(10, clock=lambda: now[0])
    for _ in range(10):
        assert bucket.wait_s() == 0
        bucket._tokens -= 1
    assert bucket.wait_s() == pytest.approx(0.1)
    now[0] += 0.1
    assert bucket.wait_s() == pytest.approx(0.0)


def test_retry_after_reads_seconds_and_http_dates() -> None:
    now = datetime(2025, 6, 15, 0, 0, 0, tzinfo=UTC)
    assert retry_after_s("30") == 30
    assert retry_after_s("Sun, 15 Jun 2025 00:01:00 GMT", now) == 60
    assert retry_after_s(None) is None and retry_after_s("soon") is None


def answer(status: int, body: bytes = b"{}", **headers: str) -> Answer:
    return Answer(status, headers, body)


@pytest.mark.parametrize(
    ("reply", "error", "wait_s"),
    [
        (answer(401, b'{"code":"UNAUTHORIZED"}'), TokenRejected, None),
        (answer(410, b'{"code":"CURSOR_EXPIRED"}'), CursorExpired, None),
        (answer(429, b'{"code":"RATE_LIMITED"}', **{"Retry-After": "30"}), RateLimited, 30),
        (answer(500, b'{"code":"INTERNAL_ERROR"}'), SourceUnavailable, None),
        (answer(502, b"<html>bad gateway</html>"), SourceUnavailable, None),
        (answer(503, b'{"code":"MAINTENANCE"}', **{"Retry-After": "3600"}), SourceUnavailable, 3600),
        (answer(400, b'{"code":"BAD_REQUEST"}'), PermanentError, None),
        (answer(403, b'{"code":"FORBIDDEN"}'), PermanentError, None),
    ],
)
def test_answers_are_classified_by_the_contract(reply: Answer, error: type[Exception], wait_s: float | None) -> None:
    with pytest.raises(error) as caught:
        page_of(reply, "GET /x", cursor_expired_status=410)
    assert getattr(caught.value, "retry_after_s", None) == wait_s


def test_an_error_in_a_200_body_follows_the_profile_rules() -> None:
    rules = BodyStatusProfile(ok=("200",), as_status={"401": 403, "429": 429}, retry_after_s={"429": 60})
    assert page_of(answer(200, b'{"code":"200","rows":[]}'), "GET /x", rules=rules) == {"code": "200", "rows": []}
    with pytest.raises(RateLimited) as limited:
        page_of(answer(200, b'{"code":"429"}'), "GET /x", rules=rules)
    assert limited.value.retry_after_s == 60
    with pytest.raises(PermanentError):
        page_of(answer(200, b'{"code":"401"}'), "GET /x", rules=rules)
    with pytest.raises(SourceUnavailable):
        page_of(answer(200, b'{"code":"500"}'), "GET /x", rules=rules)
    with pytest.raises(SourceUnavailable):
        page_of(answer(200, b"<html>"), "GET /x", rules=rules)


def eco_pager() -> Pager:
    profile = builtin_profile("eco-rest")
    return Pager(profile.paging, profile.records, 100)


def item(ident: str, updated: str) -> dict[str, str]:
    return {"id": ident, "updatedAt": updated}


def test_cursor_paging_first_by_time_then_by_cursor_and_restart_after_expiry() -> None:
    pager, state = eco_pager(), PollState()
    since = datetime.fromisoformat("2025-06-01T00:00:00+08:00")
    first = pager.first(state, since)
    assert first.params == {"updatedSince": "2025-06-01T00:00:00+08:00", "limit": "100"}
    body = {"items": [item("a", "2025-06-11T08:00:01+08:00")], "nextCursor": "C1", "hasMore": True}
    fresh, dropped = pager.fresh_items(body, state)
    assert (len(fresh), dropped) == (1, 0)
    following = pager.following(first, body, state)
    assert following is not None and following.params["cursor"] == "C1"
    last = {"items": [], "nextCursor": "C2", "hasMore": False}
    assert pager.following(following, last, state) is None and state.cursor == "C2"
    pager.restart_after_expired_cursor(state, since)
    again = pager.first(state, since)
    assert again.params["updatedSince"] == "2025-06-11T07:55:01+08:00"
    assert pager.fresh_items(body, state) == ([], 1)  # the same version is not published twice
    changed = {"items": [item("a", "2025-06-11T08:09:00+08:00")]}
    assert pager.fresh_items(changed, state)[1] == 0


@pytest.mark.parametrize(("has_more", "asks_again"), [
    (True, True), ("true", True), ("1", True), (1, True),
    (False, False), ("false", False), ("0", False), (0, False), (None, False),
])
def test_has_more_sent_as_text_or_a_number_is_read_as_meant(has_more: object, asks_again: bool) -> None:
    pager, state = eco_pager(), PollState()
    first = pager.first(state, datetime.fromisoformat("2025-06-01T00:00:00+08:00"))
    body = {"items": [item("a", "2025-06-11T08:00:01+08:00")], "nextCursor": "C1", "hasMore": has_more}
    pager.fresh_items(body, state)
    assert (pager.following(first, body, state) is not None) is asks_again


@pytest.mark.parametrize(("pages", "more"), [(2, True), ("2", True), (" 2 ", True), ("1", False), ("two", False),
                                              (True, False), (None, False)])
def test_a_page_count_sent_as_text_is_read(pages: object, more: bool) -> None:
    profile = builtin_profile("hotline-12315")
    pager, state = Pager(profile.paging, profile.records, 2), PollState()
    first = pager.first(state, datetime(2025, 6, 1, tzinfo=CST))
    page1 = {"data": {"pages": pages, "list": [{"caseNo": "1", "modifiedTime": "2025-06-10 09:00:00"}] * 2}}
    assert (pager.following(first, page1, state) is not None) is more


def test_page_number_paging_advances_the_time_only_when_a_run_completes() -> None:
    profile = builtin_profile("hotline-12315")
    pager, state = Pager(profile.paging, profile.records, 2), PollState()
    start = datetime(2025, 6, 1, tzinfo=CST)
    first = pager.first(state, start)
    assert first.params == {"modifiedSince": "2025-06-01 00:00:00", "page": "1", "pageSize": "2"}
    page1 = {"data": {"pages": 2, "list": [{"caseNo": "1", "modifiedTime": "2025-06-10 09:00:00"}] * 2}}
    pager.fresh_items(page1, state)
    second = pager.following(first, page1, state)
    assert second is not None and second.params["page"] == "2" and state.since is None
    page2 = {"data": {"pages": 2, "list": [{"caseNo": "2", "modifiedTime": "2025-06-10 10:00:00"}]}}
    pager.fresh_items(page2, state)
    assert pager.following(second, page2, state) is None
    assert state.since == datetime(2025, 6, 10, 10, 0, tzinfo=CST)
    assert pager.first(state, start).params["modifiedSince"] == "2025-06-10 09:59:00"


def test_total_based_last_page_and_state_round_trip() -> None:
    profile = builtin_profile("credit-v2")
    pager, state = Pager(profile.paging, profile.records, 2), PollState()
    request = pager.first(state, datetime(2025, 6, 1, tzinfo=CST))
    body = {"total": 2, "rows": [{"ID": "X1", "GXSJ": "2025-06-20 18:10:32"}, {"ID": "X2", "GXSJ": "bad"}]}
    assert pager.fresh_items(body, state) == (body["rows"], 0)
    assert pager.following(request, body, state) is None
    restored = PollState.from_json(state.to_json())
    assert restored == state and restored.since == datetime(2025, 6, 20, 18, 10, 32, tzinfo=CST)


def test_pruning_forgets_versions_no_re_read_can_reach() -> None:
    pager, state = eco_pager(), PollState()
    pager.fresh_items({"items": [item("old", "2025-06-11T07:00:00+08:00"),
                                 item("new", "2025-06-11T08:00:00+08:00")]}, state)
    pager.prune(state)
    assert [k[0] for k in state.seen] == ["new"]
    assert state.max_updated is not None and state.max_updated - timedelta(minutes=5) > datetime(
        2025, 6, 11, 7, 0, tzinfo=CST)


def test_the_built_in_profiles_and_a_custom_inline_profile() -> None:
    assert builtin_profile_names() == ["credit-v2", "eco-rest", "hotline-12315"]
    custom = builtin_profile("credit-v2").model_dump() | {"rate_per_s": 2}
    config = RestPollConnector.Config.model_validate({"base_url": "http://127.0.0.1:1", "profile": custom,
                                                      "api_key": "k"})
    connector = RestPollConnector("x", config, ConnectorContext())
    assert connector.profile.rate_per_s == 2 and [r.variant for r in connector.resources] == ["license-v2",
                                                                                              "penalty-v2"]


def test_bad_options_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="unknown REST profile"):
        RestPollConnector("x", RestPollConnector.Config(base_url="http://h", profile="eco"), ConnectorContext())
    with pytest.raises(ConfigError, match="client_secret"):
        RestPollConnector("x", RestPollConnector.Config(base_url="http://h", profile="eco-rest", client_id="a"),
                          ConnectorContext())
    with pytest.raises(ConfigError, match="api_key"):
        RestPollConnector("x", RestPollConnector.Config(base_url="http://h", profile="credit-v2"), ConnectorContext())
