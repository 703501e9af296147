from __future__ import annotations

import pytest

from mapping.codes import CodeTable, ListResolution, normalise_code_value
from mapping.standard import load_standard


def _table(name: str) -> CodeTable:
    return load_standard().code_tables[name]


def test_normalisation_is_nfkc_without_whitespace_ascii_case_folded() -> None:
    assert normalise_code_value("  ＩＮＳＥＲＴ\u3000") == "insert"
    assert normalise_code_value("罚 款\n") == "罚款"
    assert normalise_code_value("其他（需注明）") == "其他(需注明)"


def test_exact_code_and_label() -> None:
    table = _table("procedure_type")
    assert table.is_code("01")
    assert not table.is_code("简易程序")
    assert table.resolve("01") == "01"
    assert table.resolve(table.codes["01"].label_zh) == "01"


def test_text_aliases_apply_and_ascii_case_is_ignored() -> None:
    operation = _table("operation")
    assert operation.resolve("insert") == "i"
    assert operation.resolve("INSERT") == "i"
    assert operation.resolve("ｕｐｄａｔｅ") == "u"
    assert operation.resolve("修改") == "u"
    assert operation.resolve("I") == "i"  # the code itself, case-insensitively
    assert operation.resolve("upsert") is None


def test_scheme_aliases_only_when_declared() -> None:
    penalty = _table("penalty_category")
    assert penalty.resolve("02") is None
    assert penalty.resolve("02", ["prov_14"]) == "罚款"
    # the same digit means different things in different schemes
    assert penalty.resolve("1", ["sgs_v1"]) == "罚款"
    assert penalty.resolve("1", ["legacy_19"]) == "警告"
    # a scheme of another table is simply not used here
    assert penalty.resolve("01", ["sgs_s14"]) is None


def test_scheme_order_is_the_mappings() -> None:
    penalty = _table("penalty_category")
    assert penalty.resolve("2", ["legacy_19", "sgs_v1"]) == "罚款"


def test_extra_aliases_come_last_and_target_codes_or_labels() -> None:
    operation = _table("operation")
    assert operation.resolve("X", extra_aliases={"x": "删除"}) == "d"
    assert operation.resolve("ins", extra_aliases={"INS": "i"}) == "i"
    # code/label and text aliases win over the mapping's own aliases
    assert operation.resolve("insert", extra_aliases={"insert": "d"}) == "i"
    assert operation.resolve("y", extra_aliases={"y": "nonsense"}) is None
    assert operation.unknown_alias_targets({"a": "i", "b": "nonsense"}) == ["nonsense"]


def test_resolve_ignores_combined_aliases() -> None:
    assert _table("penalty_category").resolve("没收违法所得、没收非法财物") is None


def test_code_entry_carries_holder_and_identifier() -> None:
    id_type = _table("id_type")
    assert id_type.codes["111"].holder == "natural_person"
    assert id_type.codes["111"].validates_as == "ric"
    assert id_type.codes["001"].validates_as == "uscc"
    assert id_type.codes["099"].validates_as is None


def test_list_is_split_on_separators() -> None:
    got = _table("penalty_category").resolve_list("警告；罚款|罚 款\n通报批评")
    assert got == ListResolution(["警告", "罚款", "通报批评"], [], False, combined=False)


def test_list_parts_without_match_are_split_on_enumeration_comma() -> None:
    got = _table("penalty_category").resolve_list("警告、罚款，吊销许可证件、不明处罚")
    assert got.codes == ["警告", "罚款", "吊销许可证件"]
    assert got.unknown == ["不明处罚"]
    assert not got.ambiguous


def test_label_with_enumeration_comma_is_not_split() -> None:
    got = _table("penalty_category").resolve_list("法律、行政法规规定的其他行政处罚")
    assert got.codes == ["其他"]


def test_combined_alias_narrowed_by_keywords() -> None:
    table = _table("penalty_category")
    got = table.resolve_list("没收违法所得、没收非法财物", narrow_text="没收违法所得人民币3000元")
    assert got == ListResolution(["没收违法所得"], [], False, combined=True)
    both = table.resolve_list("没收违法所得、没收非法财物", narrow_text="没收违法所得和非法财物")
    assert both.codes == ["没收违法所得", "没收非法财物"]
    assert not both.ambiguous


def test_combined_alias_not_narrowed_is_ambiguous() -> None:
    table = _table("penalty_category")
    got = table.resolve_list("暂扣或者吊销许可证、暂扣或者吊销执照", narrow_text="责令改正")
    assert got.codes == ["暂扣许可证件", "吊销许可证件"]
    assert got.ambiguous
    assert table.resolve_list("警告、通报批评").ambiguous  # no narrowing text at all


def test_combined_alias_by_declared_scheme_and_within_parts() -> None:
    table = _table("penalty_category")
    assert table.resolve_list("2", ["sgs_v1"]).codes == ["没收违法所得", "没收非法财物"]
    assert table.resolve_list("2", ["legacy_19"]).codes == ["罚款"]
    got = table.resolve_list("0,2", ["sgs_v1"], narrow_text="没收非法财物")
    assert got == ListResolution(["警告", "没收非法财物"], [], False, combined=True)


def test_list_input_and_duplicates() -> None:
    got = _table("penalty_category").resolve_list(["罚款", "警告", "罚款"], extra_aliases={"罚金": "罚款"})
    assert got.codes == ["罚款", "警告"]
    assert _table("penalty_category").resolve_list(["罚金"], extra_aliases={"罚金": "罚款"}).codes == ["罚款"]


@pytest.mark.parametrize("value", ["", "  ", ";；"])
def test_empty_list_values(value: str) -> None:
    assert _table("penalty_category").resolve_list(value) == ListResolution([], [], False)


def test_table_metadata() -> None:
    penalty = _table("penalty_category")
    assert penalty.narrow_field == {"penalty": "penalty_result", "credit_penalty": "penalty_content"}
    assert "sgs_v1" in penalty.schemes
    assert _table("hj212_system_code").mode == "open"
    assert _table("operation").mode == "closed"
