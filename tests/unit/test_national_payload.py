"""Batches within the record and byte limits; deterministic batch ids; Retry-After."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from adapters.base import JsonRecord
from adapters.national_platform.http import json_object
from adapters.national_platform.payload import (
    Encoded,
    batch_id_for,
    body_size,
    encode_body,
    encode_record,
    plan,
    platform_record,
)
from gateway.errors import retry_after_s


def encoded(n: int, size: int) -> list[Encoded]:
    return [Encoded(f"r{i}", b'"' + b"x" * (size - 2) + b'"') for i in range(n)]


def test_ext_and_absent_fields_are_not_sent_and_values_are_kept() -> None:
    record = {"record_kind": "penalty", "fine_amount_yuan": "5000.00", "ext": {"due": "x"}, "remark": None,
              "penalty_types": ["警告"], "no_penalty": False}
    assert platform_record(record) == {"record_kind": "penalty", "fine_amount_yuan": "5000.00",
                                       "penalty_types": ["警告"], "no_penalty": False}
    assert encode_record(record) == '{"record_kind":"penalty","fine_amount_yuan":"5000.00","penalty_types":["警告"],' \
                                    '"no_penalty":false}'.encode()


def test_body_size_is_exact() -> None:
    records = encoded(3, 17)
    body = encode_body("app-1234567890", [r.body for r in records])
    assert body_size("app-1234567890", records) == len(body)
    assert json.loads(body)["records"] == ["x" * 15] * 3


def test_plan_respects_record_count_and_bytes() -> None:
    records = encoded(10, 100)
    by_count = plan(records, max_records=4, max_bytes=10_000, id_length=20)
    assert [len(p) for p in by_count] == [4, 4, 2]
    by_bytes = plan(records, max_records=500, max_bytes=400, id_length=20)
    assert all(body_size("x" * 20, p) <= 400 for p in by_bytes)
    assert [r.record_id for p in by_bytes for r in p] == [r.record_id for r in records]
    assert [len(p) for p in by_bytes] == [3, 3, 3, 1]  # 48 + 3 * 100 + 2 commas fit in 400, 4 do not


def test_a_record_larger_than_the_limit_travels_alone() -> None:
    records = [*encoded(1, 50), Encoded("big", b'"' + b"y" * 998 + b'"'), *encoded(1, 50)]
    parts = plan(records, max_records=500, max_bytes=500, id_length=20)
    assert [[r.record_id for r in p] for p in parts] == [["r0"], ["big"], ["r0"]]


def test_batch_ids_are_deterministic_valid_and_differ_by_content() -> None:
    a = batch_id_for("zj330000sgw", ["r1", "r2"])
    assert a == batch_id_for("zj330000sgw", ["r1", "r2"])
    assert a != batch_id_for("zj330000sgw", ["r2", "r1"])
    assert a.startswith("zj330000sgw-") and 8 <= len(a) <= 64
    assert len(batch_id_for("a" * 32, ["r"])) <= 64


def test_retry_after_seconds_and_dates() -> None:
    now = datetime(2025, 6, 20, 10, 0, 0, tzinfo=UTC)
    assert retry_after_s("10") == 10.0
    assert retry_after_s("Fri, 20 Jun 2025 10:00:30 GMT", now) == 30.0
    assert retry_after_s(None) is None
    assert retry_after_s("soon") is None
    assert json_object(b"<html>") == {}
    assert json_object(b'{"code":"42900"}') == {"code": "42900"}


def test_a_record_with_its_json_is_sent_as_those_bytes() -> None:
    raw = orjson.dumps({"record_kind": "penalty", "名称": "杭州/样例", "fine_amount_yuan": "5000.00", "n": 1.5,
                        "penalty_types": ["警告"]})
    record = JsonRecord(orjson.loads(raw), raw)
    assert encode_record(record) is raw
    assert encode_record(record) == encode_record(dict(record))


@pytest.mark.parametrize("fields", [{"ext": {"due": "x"}}, {"remark": None}, {"nested": {"a": None}}])
def test_json_kept_with_an_ext_or_a_null_is_encoded_as_any_record(fields: dict[str, Any]) -> None:
    plain = {"record_kind": "penalty", **fields}
    record = JsonRecord(plain, orjson.dumps(plain))
    assert encode_record(record) == encode_record(plain) == orjson.dumps(platform_record(plain))


@pytest.mark.parametrize("change", [
    lambda r: r.__setitem__("n", 2), lambda r: r.__delitem__("n"), lambda r: r.update(n=2), lambda r: r.pop("n"),
    lambda r: r.popitem(), lambda r: r.setdefault("m", 1), lambda r: r.clear(), lambda r: r.__ior__({"n": 2})])
def test_a_changed_record_forgets_its_json(change: Any) -> None:
    raw = orjson.dumps({"record_kind": "penalty", "n": 1})
    record = JsonRecord(orjson.loads(raw), raw)
    change(record)
    assert record.json is None
    assert encode_record(record) == orjson.dumps(dict(record))


def test_an_unread_record_is_sent_as_its_bytes_without_being_read() -> None:
    raw = orjson.dumps({"record_kind": "penalty", "名称": "杭州/样例", "n": 1.5, "text": 'says "ext": here'})
    record = JsonRecord.unread(raw)
    assert encode_record(record) is raw
    assert type(record) is not JsonRecord  # still unread: nothing looked at the fields


@pytest.mark.parametrize("fields", [{"ext": {"due": "x"}}, {"remark": None}, {"nested": {"ext": 1}}])
def test_an_unread_record_with_an_ext_or_a_null_is_encoded_as_any_record(fields: dict[str, Any]) -> None:
    plain = {"record_kind": "penalty", **fields}
    assert encode_record(JsonRecord.unread(orjson.dumps(plain))) == orjson.dumps(platform_record(plain))
