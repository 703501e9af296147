"""The throughput shortcuts give exactly what the general code gives: memos, fast conversions, ids."""

from __future__ import annotations

import random
import unicodedata
from datetime import date
from decimal import Decimal
from typing import Any

import jmespath
import pytest

from gateway.errors import MappingError
from mapping.codes import CodeTable, normalise_code_value
from mapping.dates import compact_datetime_text, epoch_text, parse_datetime
from mapping.map_context import MapContext, TransformFailure
from mapping.memo import MEMO_MAX_ENTRIES, memoised, memoised_value
from mapping.paths import compile_jmespath, compile_path
from mapping.record_id import _dumps, canonical_content
from mapping.standard import load_standard
from mapping.transform_values import plain_number, plain_places
from mapping.transforms import canonical_identifier
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


def test_value_memo_converts_a_meta_text_once_but_reports_a_failure_every_time() -> None:
    calls: list[Any] = []
    meta_value = lambda src, ctx: ctx.meta.get("m")  # noqa: E731
    evaluate = memoised_value(meta_value, _chain_counting(calls, fail_on="bad"))
    for _ in range(3):
        assert evaluate({}, MapContext({"m": "x"})) == "<x>"
    assert calls == ["x"]
    for _ in range(2):
        ctx = MapContext({"m": "bad"})
        assert evaluate({}, ctx) == "bad"
        assert [f.code for f in ctx.findings] == ["TYPE"]
    first = evaluate({}, MapContext({"m": "list"}))
    first.append("mutated")
    assert evaluate({}, MapContext({"m": "list"})) == ["list"]
    assert evaluate({}, MapContext({"m": 5})) == "<5>"  # not a text: converted each time
    assert calls.count(5) == 1


def test_meta_fields_are_memoised_but_not_personal_ones() -> None:
    from pathlib import Path

    from mapping.compiler import compile_mapping
    from mapping.spec import MappingSpec

    spec = MappingSpec.model_validate({
        "name": "t", "version": 1, "standard_version": "1.0", "kind": "penalty", "source": "t",
        "format": "json", "fields": {"submitted_at": {"meta": "t", "then": [{"datetime": "iso"}]},
                                     "counterparty_id_no": {"meta": "n", "then": ["identifier"]}},
    })
    compiled = compile_mapping(spec, path=Path("t.yaml"), standard=load_standard("1.0"))
    plans = {plan[0]: plan[2] for plan in compiled._plans}
    assert plans["submitted_at"].__qualname__.startswith("memoised_value")
    assert not plans["counterparty_id_no"].__qualname__.startswith("memoised")
    records = compiled.map([{}, {}], {"t": "2025-06-12T17:31:02+08:00", "n": " ab12 "}, records_inline=True)
    assert [r.record["submitted_at"] for r in records] == ["2025-06-12T17:31:02+08:00"] * 2
    assert [r.record["counterparty_id_no"] for r in records] == ["AB12"] * 2


def test_epoch_text_is_parse_datetime_or_declines() -> None:
    rng = random.Random(11)
    values = [0, 1, 999, 1000, 1749522600000, 1749522600001, 253402271999999, 253402272000000, -1, -1000]
    values += [rng.randint(0, 253402300799999) for _ in range(3000)] + [rng.randint(0, 2**33) for _ in range(3000)]
    for units, name in ((1000, "epoch_ms"), (1, "epoch_s")):
        for value in values:
            fast = epoch_text(value, units)
            if fast is not None:
                assert fast == parse_datetime(value, (name,)), (value, name)
    assert epoch_text(1749522600000, 1000) == "2025-06-10T10:30:00+08:00"
    assert epoch_text(1749522600001, 1000) == "2025-06-10T10:30:00.001000+08:00"
    assert epoch_text(True, 1) is None and epoch_text(1.0, 1) is None and epoch_text("1", 1) is None


def test_epoch_transform_gives_each_stamp_its_own_text() -> None:
    # the converter keeps its last result for the next field reading the same stamp
    from mapping.transform_base import TransformContext
    from mapping.transform_values import VALUE_FACTORIES

    standard = load_standard("1.0")
    spec = standard.kinds["iot_reading"].fields["observed_at"]
    convert = VALUE_FACTORIES["datetime"]("epoch_ms", {}, TransformContext("observed_at", spec, standard,
                                                                         "iot_reading", ())).apply
    ctx = MapContext({})
    for value in (1749522600000, 1749522600000, 1749522660000, 1749522600000.0, "1749522600000", 1749522660000):
        assert convert(value, ctx) == parse_datetime(value, ("epoch_ms",))
    with pytest.raises(TransformFailure):
        convert(True, ctx)
    with pytest.raises(TransformFailure):
        convert(-(10**30), ctx)


@pytest.mark.parametrize("value", [
    {"a": 1.5, "b": "中文", "c": [None, True, 1e300, float("nan"), -0.0]}, "text", 1, None, [], {}, 2.8,
    {"when": date(2025, 1, 1), "amount": Decimal("1.10")}, [{"nested": {"x": [1, "y"]}}],
])
def test_to_string_of_the_current_node_is_jmespaths(value: Any) -> None:
    assert compile_jmespath("to_string(@)")(value) == jmespath.search("to_string(@)", value)
    assert compile_jmespath(" to_string( @ ) ")(value) == jmespath.search("to_string(@)", value)


def test_plain_number_is_to_decimal_or_declines() -> None:
    rng = random.Random(5)
    values: list[Any] = [0, -5, 10**30, 2.8, 63.0, -1.5, 0.0, -0.0, 1e16, 1e15, 1e-5, 0.1 + 0.2, float("inf"),
                         "2.80", "007", "0", "0.0", ".5", "5.", "", " 1", "-1", "+1", "１", "²", "1e5", "1" * 40,
                         "1" * 41, True, None]
    values += [rng.uniform(-1e6, 1e6) for _ in range(2000)]
    values += [f"{rng.randint(0, 10**9)}.{rng.randint(0, 10**5)}" for _ in range(2000)]
    for value in values:
        fast = plain_number(value)
        if fast is not None:
            assert fast == to_decimal(value), value
    assert plain_number(2.8) == "2.8" and plain_number("120.130512") == "120.130512"


def test_two_step_chain_keeps_the_value_before_a_failure() -> None:
    from mapping.transform_base import TransformContext
    from mapping.transforms import compile_chain

    standard = load_standard("1.0")
    tctx = TransformContext("ext.x", None, standard, "penalty", ())
    chain = compile_chain(["upper", {"map": {"A": "1"}}], tctx)
    ctx = MapContext({})
    assert chain("a", ctx) == "1" and not ctx.findings
    assert chain("b", ctx) == "B"
    assert [f.code for f in ctx.findings] == ["CODE_UNKNOWN"]
    assert chain(None, ctx) is None
    dropped = compile_chain([{"regex": "^(x)"}, "upper"], tctx)
    assert dropped("y", ctx) is None and dropped("xy", ctx) == "X"


@pytest.mark.parametrize("text", ["91330122MA2J8Q5R54", "91330122ma2j8q5r54", "1133-0106", " ab 12 ", "ＡＢ１２",
                                  "a\u3000b", "", "abc-", "x_y"])
def test_canonical_identifier_is_the_general_recipe(text: str) -> None:
    assert canonical_identifier(text) == "".join(unicodedata.normalize("NFKC", text).split()).upper().replace("-", "")


@pytest.mark.parametrize("value", ["自然人", " 自然人 ", "", "  ", None, 1, ["自然人"], ["a", "b"], {"a": 1}, "法人"])
@pytest.mark.parametrize("op", ["eq", "ne"])
def test_a_one_key_condition_is_the_general_one(value: Any, op: str) -> None:
    from mapping.source_conditions import compile_condition

    fast = compile_condition({"path": "K", op: "自然人"})
    general = compile_condition({"path": "K.x", op: "自然人"})  # two keys: the general predicate
    ctx = MapContext({})
    assert fast({"K": value}, ctx) == general({"K": {"x": value}}, ctx)
    assert fast("not an object", ctx) == general("not an object", ctx)


@pytest.mark.parametrize("types", [["罚款"], ["罚款", "警告"], ["罚款", "罚款"], [" 罚款"], ["罚款", {"a": 1}],
                                   [["x"]], ["罚款", 1], ["不是代码"], [], "罚款"])
def test_a_code_list_is_judged_as_by_the_full_check(types: Any) -> None:
    import json
    from pathlib import Path

    from mapping.validation import Validator

    data = Path(__file__).resolve().parents[1] / "data" / "standard" / "records" / "valid" / "penalty.json"
    record = json.loads(data.read_text(encoding="utf-8")) | {"penalty_types": types}
    validator = Validator(load_standard("1.0"))
    found = [(f.code, f.field) for f in validator.validate(record)]
    expected = {
        ("罚款",): [], ("罚款", "警告"): [], ("罚款", "罚款"): [("TYPE", "penalty_types")],
        (" 罚款",): [("TYPE", "penalty_types")], ("罚款", "{'a': 1}"): [("TYPE", "penalty_types")],
        ("['x']",): [("TYPE", "penalty_types")], ("罚款", "1"): [("TYPE", "penalty_types")],
        ("不是代码",): [("CODE_UNKNOWN", "penalty_types[0]")], (): [("REQUIRED", "penalty_types")],
    }
    key = tuple(str(t) for t in types) if isinstance(types, list) else None
    if key is None:
        assert found == [("TYPE", "penalty_types")]
    else:
        assert [f for f in found if f[0] != "RULE:PEN-005"] == expected[key]


def test_item_fields_memoise_only_valid_values() -> None:
    import json
    from pathlib import Path

    from mapping.validation import Validator

    data = Path(__file__).resolve().parents[1] / "data" / "standard" / "records" / "valid" / "iot_reading.json"
    record = json.loads(data.read_text(encoding="utf-8"))
    validator = Validator(load_standard("1.0"))
    factor = record["factors"][0]
    for _ in range(2):  # valid: memoised the first time, accepted at once the second
        assert validator.validate(record) == []
    for bad in ("1e5", " 2.8", 2.8):
        broken = record | {"factors": [factor | {"value": bad}]}
        assert [(f.code, f.field) for f in validator.validate(broken)] == [("TYPE", "factors[0].value")]


def test_a_placed_finding_is_a_copy_with_its_location() -> None:
    from mapping.findings import Finding

    finding = Finding("RULE:BEH-001", "check_action_no", "en", "zh", "warning", "BEH-001")
    placed = finding.at("row 2, column 检查行为编号")
    assert placed == Finding("RULE:BEH-001", "check_action_no", "en", "zh", "warning", "BEH-001",
                             "row 2, column 检查行为编号")
    assert finding.location is None and placed.at(None) == finding
    with pytest.raises(AttributeError):
        placed.location = "elsewhere"  # type: ignore[misc]


def test_a_reference_row_found_once_is_found_again_by_the_same_text(tmp_path: Any) -> None:
    from pathlib import Path

    from mapping.compiler import compile_mapping
    from mapping.spec import MappingSpec

    (tmp_path / "devices.csv").write_text("设备编号,行政区划\nDEV１,330106\nDEV2,330122\n", encoding="utf-8")
    spec = MappingSpec.model_validate({
        "name": "t", "version": 1, "standard_version": "1.0", "kind": "iot_reading", "source": "t",
        "format": "json", "references": {"devices": {"file": "devices.csv", "key": "设备编号"}},
        "fields": {"admin_division_code": {"ref": {"table": "devices", "key": {"path": "id"}, "column": "行政区划"}}},
    })
    compiled = compile_mapping(spec, path=Path(tmp_path) / "t.yaml", standard=load_standard("1.0"))
    keys = ["DEV1", "DEV１", " DEV2 ", "DEV3", "DEV1", "DEV3", "DEV2", "ＤＥＶ２", 7, None, "DEV1"]
    expected = ["330106", "330106", "330122", None, "330106", None, "330122", "330122", None, None, "330106"]
    for _ in range(2):
        found = [compiled.map({"id": key}, {})[0].record.get("admin_division_code") for key in keys]
        assert found == expected


def test_list_item_paths_are_those_of_each_element_whatever_came_before() -> None:
    from pathlib import Path

    from mapping.compiler import compile_mapping
    from mapping.spec import MappingSpec

    def compiled() -> Any:
        spec = MappingSpec.model_validate({
            "name": "t", "version": 1, "standard_version": "1.0", "kind": "iot_reading", "source": "t",
            "format": "json", "fields": {"factors": {"each": "m", "fields": {
                "code": {"path": "c"}, "value": {"first": [{"path": "v"}, {"path": "alt"}]}}}},
        })
        return compile_mapping(spec, path=Path("t.yaml"), standard=load_standard("1.0"))

    payloads: list[Any] = [
        {"m": [{"c": "a1", "v": 1}, {"c": "a2", "alt": 2}, {"c": "a3", "v": 3}]},
        {"m": [{}, {"c": "b1", "alt": 5}]},            # an empty element is dropped: item 0 is element 1
        {"m": {"c": "d1", "v": 4}},                   # one element, not a list
        {"m": [{"c": "e1", "alt": 6}]},
    ]
    shared = compiled()
    for payload in payloads + payloads[::-1]:
        (got,) = shared.map(payload, {})
        (fresh,) = compiled().map(payload, {})
        assert (got.record, got.provenance) == (fresh.record, fresh.provenance)
    (one,) = shared.map(payloads[1], {})
    assert one.provenance["factors[0].code"] == "m[1].c" and one.provenance["factors[0].value"] == "m[1].alt"
    (single,) = shared.map(payloads[2], {})
    assert single.provenance["factors[0].code"] == "m.c"


def test_the_last_valid_pattern_value_never_lets_an_invalid_one_through() -> None:
    import json
    from pathlib import Path

    from mapping.validation import Validator

    data = Path(__file__).resolve().parents[1] / "data" / "standard" / "records" / "valid" / "iot_reading.json"
    record = json.loads(data.read_text(encoding="utf-8"))
    standard = load_standard("1.0")
    validator = Validator(standard)
    factor = record["factors"][0]
    cases = [("2011", "a34013"), ("2011", "a34013"), ("20111", "a34013"), ("2011 ", "a-1"), ("2011", "a-1"),
             ("2051", "a34013"), ("2011", "a34013"), ("２011", "a34013"), ("2011", "a34013 ")]
    for command_code, code in cases:
        checked = record | {"command_code": command_code, "factors": [factor | {"code": code}]}
        assert validator.validate(checked) == Validator(standard).validate(checked), (command_code, code)
    assert validator.validate(record | {"command_code": "2011"}) == []
    assert [f.code for f in validator.validate(record | {"command_code": "201"})] == ["PATTERN"]


def test_a_list_lookup_narrowed_by_another_field_is_memoised_only_when_the_value_decides() -> None:
    from pathlib import Path

    from mapping.compiler import compile_mapping
    from mapping.spec import MappingSpec

    def compiled() -> Any:
        spec = MappingSpec.model_validate({
            "name": "t", "version": 1, "standard_version": "1.0", "kind": "penalty", "source": "t",
            "format": "json", "fields": {
                "penalty_result": {"path": "result"},
                "penalty_types": {"path": "types", "then": [{"split": ";；"}, {"lookup": "penalty_category"}]}},
        })
        return compile_mapping(spec, path=Path("t.yaml"), standard=load_standard("1.0"))

    combined = "没收违法所得、没收非法财物"
    sources = [{"types": combined, "result": "没收违法所得人民币3000元"},
               {"types": combined, "result": "没收违法所得和非法财物"},
               {"types": combined, "result": "责令改正"},
               {"types": "警告；罚款", "result": "警告"}, {"types": "警告；罚款", "result": "没收非法财物"},
               {"types": "罚款;" + combined, "result": "没收非法财物"}, {"types": "罚款;" + combined, "result": "罚款"}]
    shared = compiled()
    for source in sources + sources[::-1] + sources:
        (got,) = shared.map(source, {})
        (fresh,) = compiled().map(source, {})
        assert (got.record, got.findings) == (fresh.record, fresh.findings), source
    assert shared.map(sources[0], {})[0].record["penalty_types"] == ["没收违法所得"]
    assert shared.map(sources[1], {})[0].record["penalty_types"] == ["没收违法所得", "没收非法财物"]
