"""The eco REST contract's edges, below the socket: how an answer's body is decoded and classified,
cursor paging that cannot progress, RFC 3339 date-times, and the mapping of what the schema allows."""

from __future__ import annotations

import copy
import json
from datetime import datetime
from typing import Any

import pytest

from connectors.rest.client import Answer, page_of
from connectors.rest.paging import Pager, PollState
from connectors.rest.profile import builtin_profile
from gateway.errors import PayloadError, PermanentError, SourceUnavailable
from gateway.ingest import Ingestor
from mapping.compiler import load_mapping
from tests.conftest import MAPPINGS, SAMPLES

JSON_GBK = "application/json; charset=GBK"


def reply(status: int, body: bytes, content_type: str | None = "application/json") -> Answer:
    return Answer(status, {"Content-Type": content_type} if content_type else {}, body)


def test_a_body_is_decoded_in_the_charset_its_content_type_declares() -> None:
    page = {"items": [{"partyName": "杭州样例印染有限公司"}], "nextCursor": "c", "hasMore": False}
    encoded = json.dumps(page, ensure_ascii=False).encode("gbk")
    assert page_of(reply(200, encoded, JSON_GBK), "GET /p") == page
    with_bom = b"\xef\xbb\xbf" + json.dumps(page, ensure_ascii=False).encode()
    assert page_of(reply(200, with_bom, "application/json; charset=UTF-8"), "GET /p") == page


@pytest.mark.parametrize(
    ("answer", "code"),
    [
        (reply(200, b'{"items": [1,], "hasMore": false}'), "JSON_MALFORMED"),
        (reply(200, b"{\"a\": \"\xff\"}", "application/json; charset=utf-8"), "ENCODING"),
        (reply(200, b"{}", "application/json; charset=x-no-such-charset"), "ENCODING"),
    ],
)
def test_a_body_declared_json_that_does_not_decode_is_a_payload_error(answer: Answer, code: str) -> None:
    with pytest.raises(PayloadError) as caught:
        page_of(answer, "GET /api/v2/penalties")
    assert caught.value.code == code and "GET /api/v2/penalties" in str(caught.value)


@pytest.mark.parametrize("content_type", ["text/html; charset=utf-8", None])
def test_a_body_not_declared_json_that_does_not_decode_stays_transient(content_type: str | None) -> None:
    with pytest.raises(SourceUnavailable):
        page_of(reply(200, b"<html>busy</html>", content_type), "GET /p")


def test_a_permanent_error_carries_the_source_code_trace_id_and_message() -> None:
    body = {"code": "BAD_REQUEST", "message": "limit must be 1-500", "traceId": "9e8d7c6b5a4f3e2d"}
    with pytest.raises(PermanentError) as caught:
        page_of(reply(400, json.dumps(body).encode()), "GET /p")
    assert str(caught.value) == "GET /p: HTTP 400 code BAD_REQUEST traceId 9e8d7c6b5a4f3e2d: limit must be 1-500"


def eco_pager() -> Pager:
    profile = builtin_profile("eco-rest")
    return Pager(profile.paging, profile.records, 3)


def test_the_same_cursor_again_with_has_more_ends_the_cycle_instead_of_looping() -> None:
    pager, state = eco_pager(), PollState()
    request = pager.first(PollState(cursor="C1"), datetime.fromisoformat("2025-06-01T00:00:00+08:00"))
    assert pager.following(request, {"items": [], "nextCursor": "C1", "hasMore": True}, state) is None
    assert state.cursor == "C1"


def test_change_times_in_rfc_3339_spellings_dedupe_and_order_alike() -> None:
    pager, state = eco_pager(), PollState()
    body = {"items": [{"id": "a", "updatedAt": "2025-06-11t00:00:01z"}]}
    assert pager.fresh_items(body, state) == (body["items"], 0)
    assert state.max_updated == datetime.fromisoformat("2025-06-11T08:00:01+08:00")
    same_version = {"items": [{"id": "a", "updatedAt": "2025-06-11T08:00:01+08:00"}]}
    assert pager.fresh_items(same_version, state) == ([], 1)


ECO_MAPPING = load_mapping(MAPPINGS / "eco-rest.penalty.yaml")
ITEM = json.loads((SAMPLES / "eco-rest" / "penalties-page-1.json").read_text(encoding="utf-8"))["items"][0]


def mapped(**changes: Any) -> tuple[dict[str, Any], list[tuple[str, str | None]]]:
    return mapped_item(copy.deepcopy(ITEM) | changes)


def mapped_item(item: dict[str, Any]) -> tuple[dict[str, Any], list[tuple[str, str | None]]]:
    mapping = ECO_MAPPING
    (record,) = mapping.map({"items": [item], "nextCursor": "c", "hasMore": False},
                            {"received_at": "2025-06-21T09:00:00+08:00", "connector": "sthj-rest"})
    final, findings = Ingestor().check_mapped(mapping, record, {"connector": "sthj-rest"})
    return final, [(f.code, f.field) for f in findings if f.is_error]


def test_an_update_time_with_a_lower_case_t_and_z_maps_like_its_upper_case_form() -> None:
    record, errors = mapped(updatedAt="2025-06-05t08:20:11z")
    assert errors == []
    assert record["submitted_at"] == "2025-06-05T16:20:11+08:00"


def test_the_id_number_follows_the_party_type_when_both_numbers_are_given() -> None:
    person = {"partyType": "4", "partyName": "冯某某", "idCardNo": "330122200102280629",
              "creditCode": "91330111MA2CJ8KD04"}
    record, errors = mapped(**person)
    assert errors == []
    assert (record["counterparty_id_type"], record["counterparty_id_no"]) == ("111", "330122200102280629")
    company, errors = mapped(idCardNo="330122200102280629")
    assert errors == [] and company["counterparty_id_no"] == "91330111MA2CJ8KD04"


def test_hearing_absent_is_false_under_the_simple_procedure_and_required_under_the_general_one() -> None:
    without_hearing = {k: v for k, v in ITEM.items() if k != "hearing"}
    simple, errors = mapped_item(without_hearing | {"procedure": "simple", "penaltyCategories": "5",
                                                    "fineAmount": None})
    assert errors == [] and simple["hearing_held"] is False
    _record, errors = mapped_item(without_hearing)
    assert errors == [("REQUIRED", "hearing_held")]
