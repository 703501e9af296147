"""``JsonRecord.unread``: a record whose fields are read from its JSON at the first look at them."""

from __future__ import annotations

import copy
import json
import pickle
from operator import itemgetter
from typing import Any

import orjson
import pytest

from adapters.base import JsonRecord

FIELDS = {"record_id": "r-1", "名称": "杭州/样例", "amount": 1.5, "tags": ["a"], "remark": None}
RAW = orjson.dumps(FIELDS)


@pytest.mark.parametrize("look", [
    dict, lambda r: {**r}, list, len, repr, sorted, lambda r: list(reversed(r)), lambda r: "amount" in r,
    lambda r: r["amount"], lambda r: r.get("amount"), lambda r: list(r.items()), lambda r: list(r.keys()),
    lambda r: list(r.values()), lambda r: r == FIELDS, lambda r: r != {}, lambda r: r | {}, copy.copy, copy.deepcopy,
    lambda r: pickle.loads(pickle.dumps(r)), json.dumps, itemgetter("record_id", "amount"), lambda r: r.copy()],
    ids=lambda look: getattr(look, "__name__", "look"))
def test_any_look_at_an_unread_record_reads_its_fields(look: Any) -> None:
    record = JsonRecord.unread(RAW)
    assert look(record) == look(JsonRecord(FIELDS, RAW))
    assert type(record) is JsonRecord and record == FIELDS and record.json is RAW


@pytest.mark.parametrize("change", [
    lambda r: r.__setitem__("amount", 2), lambda r: r.__delitem__("amount"), lambda r: r.update(amount=2),
    lambda r: r.pop("amount"), lambda r: r.setdefault("m", 1), lambda r: r.__ior__({"amount": 2})])
def test_a_change_to_an_unread_record_applies_to_its_fields_and_forgets_the_json(change: Any) -> None:
    record, expected = JsonRecord.unread(RAW), dict(FIELDS)
    change(record)
    change(expected)
    assert record == expected and record.json is None


def test_an_unread_record_cannot_be_serialised_as_an_empty_one() -> None:
    """orjson reads a dict subclass's storage without its methods: it must fail, not write {}."""
    with pytest.raises(TypeError):
        orjson.dumps(JsonRecord.unread(RAW))
    with pytest.raises(TypeError):
        orjson.dumps(JsonRecord.unread(RAW), default=str)


def test_may_have_is_told_by_the_bytes_until_read() -> None:
    record = JsonRecord.unread(orjson.dumps({"ext": {"a": 1}, "note": 'no "x": key'}))
    assert record.may_have("ext") and not record.may_have("absent") and not record.may_have("x")
    assert type(record) is not JsonRecord
    assert not JsonRecord({"a": 1}).may_have("ext")
