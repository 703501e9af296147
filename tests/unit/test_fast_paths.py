"""The throughput shortcuts give exactly what the general code gives: memos, fast conversions, ids."""

from __future__ import annotations

import random
from typing import Any

import pytest

from gateway.errors import MappingError
from mapping.codes import CodeTable, normalise_code_value
from mapping.dates import compact_datetime_text, parse_datetime
from mapping.map_context import MapContext
from mapping.memo import MEMO_MAX_ENTRIES, memoised
from mapping.paths import compile_path
from mapping.record_id import _dumps, canonical_content
from mapping.standard import load_standard
from mapping.transform_values import plain_places
from mapping.values import ValueFormatError, to_decimal


def test_plain_places_matches_to_decimal_or_declines() -> None:
    rng = random.Random(7)
    texts = ["0", "00", "0.0", "0.00", "1", "1.5", "1.505", "007", "1.", ".5", "-1", "+1", "１", "1e5",
             "1" * 31, "1" * 30]
    texts += [f"{rng.randint(0, 10**8)}.{rng.randint(0, 999)}"[: rng.randint(1, 12)] for _ in range(2000)]
    for text in texts:
        for places in (0, 1, 2, 3):
            fast = plain_places(text, places)
            if fast is not None:
                assert fast == to_decimal(text, places=places), (text, places)
    assert plain_places("20000.00", 2) == "20000.00"
    assert plain_places("2000", 2) == "2000.00"
    assert plain_places("1.505", 2) is None      # rounding: the general path decides


@pytest.mark.parametrize("text", ["20250627103015", "20240229235959", "20250229103015", "20240229240000",
                                  "20241301000000", "00000101000000", "20250630006000", "20250630000060",
                                  "2025062710301", "２0250627103015"])
def test_compact_datetime_is_parse_datetime_or_declines(text: str) -> None:
    fast = compact_datetime_text(text)
    try:
        general: str | None = parse_datetime(text, ("yyyyMMddHHmmss",))
    except ValueFormatError:
        general = None
    assert fast == general


def _chain_counting(calls: list[Any], fail_on: str | None = None) -> Any:
    def chain(value: Any, ctx: MapContext) -> Any:
        calls.append(value)
        if value == fail_on:
            ctx.report("TYPE", "error", "bad", "错")
            return value
        return [value] if value == "list" else f"<{value}>"
    return chain


def test_memo_converts_a_text_once_but_reports_a_failure_every_time() -> None:
    calls: list[Any] = []
    evaluate = memoised(compile_path("A").get, "A", _chain_counting(calls, fail_on="bad"))
    for _ in range(3):
        assert evaluate({"A": " x "}, MapContext({})) == "<x>"
    assert calls == ["x"]
    for _ in range(2):
        ctx = MapContext({})
        assert evaluate({"A": "bad"}, ctx) == "bad"
        assert [f.code for f in ctx.findings] == ["TYPE"]
    first = evaluate({"A": "list"}, MapContext({}))
    first.append("mutated")
    assert evaluate({"A": "list"}, MapContext({})) == ["list"]   # each record gets its own list


def test_memo_stays_bounded_and_stops_for_values_that_do_not_repeat() -> None:
    calls: list[Any] = []
    evaluate = memoised(compile_path("A").get, "A", _chain_counting(calls))
    for i in range(3 * MEMO_MAX_ENTRIES):
        assert evaluate({"A": str(i)}, MapContext({})) == f"<{i}>"
    assert len(calls) == 3 * MEMO_MAX_ENTRIES
    memos = [c.cell_contents for c in evaluate.__closure__ or () if isinstance(c.cell_contents, dict)]
    assert memos and all(len(m) <= MEMO_MAX_ENTRIES for m in memos)
    assert evaluate({"A": "5"}, MapContext({})) == "<5>"


def test_pii_fields_are_not_memoised() -> None:
    from mapping.compiler import compile_mapping
    from mapping.spec import MappingSpec

    spec = MappingSpec.model_validate({
        "name": "t", "version": 1, "standard_version": "1.0", "kind": "penalty", "source": "t",
        "format": "json", "fields": {"counterparty_id_no": {"path": "N", "then": ["identifier"]},
                                     "decided_at": {"path": "D", "then": [{"date": "yyyyMMdd"}]}},
    })
    from pathlib import Path

    compiled = compile_mapping(spec, path=Path("t.yaml"), standard=load_standard("1.0"))
    plans = {plan[0]: plan[2] for plan in compiled._plans}
    assert plans["decided_at"].__qualname__.startswith("memoised")
    assert not plans["counterparty_id_no"].__qualname__.startswith("memoised")


def _original_content(record: dict[str, Any]) -> bytes:
    content = {k: v for k, v in record.items() if v or not (v is None or v == "" or v == [])}
    for name in ("record_id", "received_at", "connector", "standard_version", "submitted_at"):
        content.pop(name, None)
    return _dumps(content)


@pytest.mark.parametrize("record", [
    {"a": "x"}, {"a": None, "b": "x"}, {"a": "", "b": []}, {"a": "x:null", "b": 'y:""'},
    {"a": {"b": None}}, {"a": [{}], "b": False, "c": 0}, {"received_at": "t", "a": "y", "record_id": None},
    {"a": (), "b": ("x",)}, {"z": "", "connector": "c"}, {"submitted_at": "t", "a": "x"}, {},
])
def test_canonical_content_is_the_stored_recipe(record: dict[str, Any]) -> None:
    assert canonical_content(record) == _original_content(record)


def test_canonical_content_still_refuses_what_is_not_json() -> None:
    with pytest.raises(MappingError):
        canonical_content({"a": object()})


def test_list_resolver_memo_never_hides_narrowing_by_another_field() -> None:
    table = load_standard("1.0").code_tables["penalty_category"]
    assert isinstance(table, CodeTable)
    combined = next(iter(table._combined.get("text", {}).items()), None)
    if combined is None:
        pytest.skip("no combined alias in the text scheme")
    value_key, alias = combined
    source = next(v for v, a in table._combined["text"].items() if a is alias)
    assert normalise_code_value(source) == value_key
    resolve = table.list_resolver(())
    for narrow in (None, "责令停产停业并罚款", "没收违法所得", None):
        assert resolve([source, "罚款"], narrow) == table.resolve_list([source, "罚款"], (), None, narrow)
