"""Each transform of docs/mapping-spec.md, through a compiled one-field mapping."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gateway.errors import ConfigError
from mapping.compiler import CompiledMapping, MappedRecord, compile_mapping
from mapping.spec import MappingSpec
from mapping.standard import load_standard


def build(fields: dict[str, Any], kind: str = "penalty", **top: Any) -> CompiledMapping:
    doc = {
        "name": "t.m",
        "version": 1,
        "standard_version": "1.0",
        "kind": kind,
        "source": "test",
        "format": "json",
        "fields": fields,
        **top,
    }
    return compile_mapping(
        MappingSpec.model_validate(doc), path=Path("/nonexistent/t.yaml"), standard=load_standard("1.0")
    )


def run(field: str, then: list[Any], value: Any, kind: str = "penalty", **top: Any) -> MappedRecord:
    mapping = build({field: {"path": "v", "then": then}}, kind, **top)
    (mapped,) = mapping.map({"v": value}, {})
    return mapped


def value_of(field: str, then: list[Any], value: Any, kind: str = "penalty", **top: Any) -> Any:
    mapped = run(field, then, value, kind, **top)
    assert mapped.findings == []
    if field.startswith("ext."):
        return mapped.record.get("ext", {}).get(field[4:])
    return mapped.record.get(field)


def codes(mapped: MappedRecord) -> list[tuple[str, str, str]]:
    return [(f.code, f.field, f.severity) for f in mapped.findings]


@pytest.mark.parametrize(
    ("then", "given", "expected"),
    [
        (["strip"], "\u3000 a b \u3000", "a b"),
        (["upper"], "ab-c", "AB-C"),
        (["lower"], "AbC", "abc"),
        (["identifier"], " ９１３３０１ 1-0ma ", "91330110MA"),
        ([{"split": ",，、"}], "张三，李四、张三, ,王五", ["张三", "李四", "王五"]),
        ([{"split": ","}, {"join": "；"}], "a,b", "a；b"),
        ([{"regex": r"(\d+)号"}], "杭环罚〔2025〕12号", "12"),
        ([{"regex": r"\d+"}], "No 77 and 88", "77"),
        ([{"regex": r"(\d+)号"}], "no number", None),
        ([{"slice": [0, 6]}], "330110005000", "330110"),
        ([{"slice": [2, None]}], "ab123", "123"),
        ([{"slice": [0, 6]}], 330110005000, "330110"),
        ([{"map": {"01": "危化", "02": "粉尘"}}], "02", "粉尘"),
        ([{"map": {"1": "x"}}], 1, "x"),
        ([{"map": {"01": "危化"}, "else": "keep"}], "09", "09"),
        (
            [{"replace": {"pattern": r"[-:T]|\+08:00$", "with": ""}}],
            "2025-06-10T10:30:00+08:00",
            "20250610103000",
        ),
        ([{"replace": {"pattern": r"(\d+)-(\d+)", "with": r"\2/\1"}}], "12-34", "34/12"),
        ([{"map": {"a": "b"}, "else": "absent"}, {"default": "d"}], "z", "d"),
        ([{"default": "无"}], None, "无"),
        ([{"default": "无"}], "  ", "无"),
        ([{"default": "无"}], "有", "有"),
        ([{"split": ","}, {"each": ["upper", {"slice": [0, 2]}]}], "abc,de", ["AB", "DE"]),
    ],
)
def test_text_transforms(then: list[Any], given: Any, expected: Any) -> None:
    assert value_of("ext.x", then, given) == expected


def test_absent_values_skip_transforms_but_not_default() -> None:
    mapped = run("ext.x", [{"map": {"a": "b"}}, {"default": "d"}, "upper"], "\u3000")
    assert mapped.record["ext"] == {"x": "D"}
    assert mapped.findings == []


def test_text_transforms_work_element_wise_on_lists() -> None:
    assert value_of("ext.x", ["upper"], [" a ", "b", ""]) == ["A", "B"]
    assert value_of("ext.x", [{"map": {"1": "one", "2": "two"}}], ["1", 2]) == ["one", "two"]


def test_map_unmapped_value_is_code_unknown_and_keeps_the_value() -> None:
    mapped = run("ext.x", [{"map": {"01": "危化"}}, "upper"], "zz")
    assert codes(mapped) == [("CODE_UNKNOWN", "ext.x", "error")]
    assert mapped.record["ext"]["x"] == "zz"  # chain stopped before `upper`
    assert "'zz'" in mapped.findings[0].message_en and "“zz”" in mapped.findings[0].message_zh


def test_map_refuses_listed_values_with_their_own_code_and_message() -> None:
    refuse = {"停用": {"code": "IOT_DEVICE_INACTIVE", "message_zh": "设备已停用", "message_en": "decommissioned"},
              "未登记": "IOT_UNKNOWN_DEVICE"}
    inactive = run("ext.x", [{"map": {"在用": "在用"}, "refuse": refuse}], " 停用 ")
    assert codes(inactive) == [("IOT_DEVICE_INACTIVE", "ext.x", "error")]
    assert inactive.findings[0].message_zh == "设备已停用（取值“停用”）"
    unknown = run("ext.x", [{"map": {"在用": "在用"}, "refuse": refuse}], "未登记")
    assert codes(unknown) == [("IOT_UNKNOWN_DEVICE", "ext.x", "error")]
    assert unknown.findings[0].message_zh.startswith("取值不予受理（IOT_UNKNOWN_DEVICE）")
    other = run("ext.x", [{"map": {"在用": "在用"}, "refuse": refuse}], "维修")
    assert codes(other) == [("CODE_UNKNOWN", "ext.x", "error")]
    assert value_of("ext.x", [{"map": {"在用": "在用"}, "refuse": refuse}], "在用") == "在用"


def test_date_and_datetime() -> None:
    assert value_of("decided_at", [{"date": "yyyyMMdd"}], "20250605") == "2025-06-05"
    assert value_of("decided_at", [{"date": ["yyyy-MM-dd", "yyyy年M月d日"]}], "2025年6月5日") == "2025-06-05"
    assert value_of("decided_at", [{"date": "yyyy-MM-dd"}], "0001-01-01") is None
    assert (
        value_of("submitted_at", [{"datetime": "yyyyMMddHHmmss"}], "20250603164512")
        == "2025-06-03T16:45:12+08:00"
    )
    assert (
        value_of("submitted_at", [{"datetime": "iso"}], "2025-06-03T08:45:12Z") == "2025-06-03T16:45:12+08:00"
    )


def test_unparseable_date_is_a_type_finding_naming_the_format() -> None:
    mapped = run("decided_at", [{"date": "yyyyMMdd"}], "2025-13-45")
    assert codes(mapped) == [("TYPE", "decided_at", "error")]
    assert "yyyyMMdd" in mapped.findings[0].message_en
    assert "'2025-13-45'" in mapped.findings[0].message_en
    assert mapped.record["decided_at"] == "2025-13-45"  # validation sees the raw value


def test_type_finding_of_a_pii_field_withholds_the_value() -> None:
    mapped = run("counterparty_id_no", [{"date": "yyyyMMdd"}], "330106199001011234")
    assert codes(mapped) == [("TYPE", "counterparty_id_no", "error")]
    finding = mapped.findings[0]
    assert "330106199001011234" not in finding.message_en + finding.message_zh


def test_decimal_integer_boolean_amount() -> None:
    assert value_of("fine_amount_yuan", [{"decimal": {"unit": "万元", "places": 2}}], "23.6") == "236000.00"
    assert value_of("fine_amount_yuan", [{"decimal": {"places": 2}}], 5000) == "5000.00"
    assert value_of("fine_amount_yuan", ["decimal"], "12.50") == "12.50"
    assert value_of("ext.n", ["integer"], "42") == 42
    assert value_of("hearing_held", ["boolean"], "是") is True
    assert value_of("hearing_held", ["boolean"], "N") is False
    assert value_of("fine_amount_yuan", ["amount_from_text"], "并处罚款人民币贰拾叁万陆仟元整") == "236000.00"
    assert value_of("fine_amount_yuan", ["amount_from_text"], "警告") is None


def test_bad_decimal_is_a_type_finding() -> None:
    mapped = run("fine_amount_yuan", [{"decimal": {"places": 2}}], "约五千")
    assert codes(mapped) == [("TYPE", "fine_amount_yuan", "error")]


def test_lookup_scalar_with_source_aliases_and_schemes() -> None:
    then = [{"lookup": {"table": "operation", "aliases": {"I": "i", "U": "u"}}}]
    assert value_of("operation", then, "I") == "i"
    assert value_of("operation", ["lookup"], "新增") == "i"  # label_zh, table from the field
    assert value_of("operation", [{"lookup": "operation"}], "delete") == "d"  # text alias


def test_lookup_unknown_is_an_error_on_closed_tables() -> None:
    mapped = run("operation", ["lookup"], "X")
    assert codes(mapped) == [("CODE_UNKNOWN", "operation", "error")]
    assert mapped.record["operation"] == "X"
    assert "operation" in mapped.findings[0].message_en
    assert "操作类型" in mapped.findings[0].message_zh


def test_lookup_unknown_is_a_warning_on_open_tables() -> None:
    mapped = run("system_code", ["lookup"], "99", kind="iot_reading")
    assert codes(mapped) == [("CODE_UNKNOWN", "system_code", "warning")]
    assert mapped.record["system_code"] == "99"


def test_lookup_on_a_list_field_resolves_element_wise() -> None:
    assert value_of("penalty_types", ["lookup"], "警告；罚款") == ["警告", "罚款"]
    assert value_of("penalty_types", [{"split": ","}, "lookup"], "1,0", schemes=["sgs_v1"]) == [
        "罚款",
        "警告",
    ]


def test_lookup_on_a_list_field_reports_unknown_elements() -> None:
    mapped = run("penalty_types", ["lookup"], "警告；打屁股")
    assert codes(mapped) == [("CODE_UNKNOWN", "penalty_types", "error")]
    assert mapped.record["penalty_types"] == ["警告", "打屁股"]


def test_lookup_narrows_combined_labels_by_the_kinds_narrow_field() -> None:
    mapping = build(
        {
            "penalty_types": {"path": "cat", "then": ["lookup"]},  # mapped before penalty_result...
            "penalty_result": {"path": "result"},  # ...but evaluated after it
        }
    )
    (narrowed,) = mapping.map({"cat": "没收违法所得、没收非法财物", "result": "没收违法所得3000元"}, {})
    assert narrowed.record["penalty_types"] == ["没收违法所得"]
    assert narrowed.findings == []
    (ambiguous,) = mapping.map({"cat": "没收违法所得、没收非法财物", "result": "见决定书"}, {})
    assert ambiguous.record["penalty_types"] == ["没收违法所得", "没收非法财物"]
    assert codes(ambiguous) == [("CODE_AMBIGUOUS", "penalty_types", "warning")]


@pytest.mark.parametrize(
    ("then", "message"),
    [
        (["uper"], "unknown transform 'uper' (did you mean 'upper'?)"),
        ([{"date": "dd.MM.yyyy"}], "unknown format 'dd.MM.yyyy'"),
        ([{"regex": "("}], "does not compile"),
        ([{"slice": [0]}], "'slice' needs [start, end]"),
        ([{"lookup": "no_such_table"}], "unknown code table 'no_such_table'"),
        ([{"lookup": {"table": "operation", "aliases": {"I": "insert-ish"}}}], "insert-ish"),
        ([{"map": {"a": "b"}, "else": "drop"}], "'else' is 'keep'"),
        ([{"map": {"a": "b"}, "refuse": {"c": "lower"}}], "code 'lower' is not an upper-case code"),
        ([{"map": {"a": "b"}, "refuse": {"c": {"code": "X1", "hint": "?"}}}], "refuse 'c': a CODE or"),
        ([{"map": {"a": "b"}, "refuse": []}], "'refuse' is a table"),
        ([{"replace": {"pattern": "(a)", "with": "\\2"}}], "'replace': invalid group reference"),
        ([{"replace": "x"}], "'replace' takes {pattern: REGEX, with: TEXT}"),
        ([{"decimal": {"unit": "美元"}}], "unit must be one of"),
        ([{"upper": 1}], "'upper' takes no argument"),
        ([{"split": ",", "join": ";"}], "a transform is a name or a one-key mapping"),
        ([{"default": ""}], "'default' needs a value"),
    ],
)
def test_bad_transforms_fail_at_compile(then: list[Any], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        build({"operation": {"path": "v", "then": then}})
    (problem,) = info.value.problems
    assert "fields.operation.then[0]" in problem
    assert message in problem


def test_conversions_refuse_lists_with_a_type_finding() -> None:
    mapped = run("decided_at", [{"date": "iso"}], ["2025-06-05"])
    assert codes(mapped) == [("TYPE", "decided_at", "error")]
    assert mapped.findings[0].message_en == "expected a date (iso), got a list"
    assert mapped.findings[0].message_zh == "应为日期（iso），实际为列表"


def test_a_failing_step_keeps_the_value_and_skips_the_rest() -> None:
    mapped = run("ext.x", [{"split": ","}, "integer", {"default": 0}], "1,x")
    assert codes(mapped) == [("TYPE", "ext.x", "error")]
    assert mapped.record["ext"]["x"] == ["1", "x"]
