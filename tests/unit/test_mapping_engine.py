"""The mapping engine: sources, conditions, records, provenance, golden examples."""

from __future__ import annotations

import textwrap
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from gateway.errors import MappingError
from mapping.compiler import CompiledMapping, MappedRecord, compile_mapping, load_mapping
from mapping.examples import ExampleFailure, run_examples
from mapping.findings import Finding
from mapping.spec import MappingSpec
from mapping.standard import load_standard


def build(
    fields: dict[str, Any], kind: str = "inspection", folder: Path | None = None, **top: Any
) -> CompiledMapping:
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
    path = (folder or Path("/nonexistent")) / "t.yaml"
    return compile_mapping(MappingSpec.model_validate(doc), path=path, standard=load_standard("1.0"))


def map_one(mapping: CompiledMapping, source: Any, meta: Mapping[str, Any] | None = None) -> MappedRecord:
    (mapped,) = mapping.map(source, meta or {})
    return mapped


def passthrough(mapped: MappedRecord, meta: Mapping[str, Any]) -> tuple[dict[str, Any], list[Finding]]:
    return dict(mapped.record), list(mapped.findings)


# --- sources -----------------------------------------------------------------------------------


def test_path_source_trims_and_treats_blank_as_absent() -> None:
    mapping = build(
        {
            "source_record_id": {"path": "a.b[1].c"},
            "check_action_name": {"path": "blank"},
            "counterparty_name": {"path": "wide"},
        }
    )
    mapped = map_one(
        mapping, {"a": {"b": [{}, {"c": "  X1 "}]}, "blank": " \u3000 ", "wide": "\u3000某公司\u3000"}
    )
    assert mapped.record == {
        "record_kind": "inspection",
        "source_record_id": "X1",
        "counterparty_name": "某公司",
    }


def test_missing_or_mistyped_steps_are_absent() -> None:
    mapping = build({"source_record_id": {"path": "a.b[5].c"}, "check_action_name": {"path": "s.x"}})
    assert map_one(mapping, {"a": {"b": []}, "s": "text"}).record == {"record_kind": "inspection"}


def test_index_on_a_dict_is_a_list_of_one() -> None:
    mapping = build({"source_record_id": {"path": "items[0].id"}})
    assert map_one(mapping, {"items": {"id": "only"}}).record["source_record_id"] == "only"


def test_const_meta_jmespath() -> None:
    mapping = build(
        {
            "counterparty_nature": {"const": "2"},
            "admin_division_code": {"meta": "admin_division_code"},
            "submitted_at": {"meta": "received_at"},
            "check_action_name": {"jmespath": "items[?kind=='main'].name | [0]"},
        }
    )
    mapped = map_one(
        mapping,
        {"items": [{"kind": "x", "name": "no"}, {"kind": "main", "name": "yes"}]},
        {"admin_division_code": "330106", "received_at": "2025-06-12T10:00:00+08:00"},
    )
    assert mapped.record["counterparty_nature"] == "2"
    assert mapped.record["admin_division_code"] == "330106"
    assert mapped.record["submitted_at"] == "2025-06-12T10:00:00+08:00"
    assert mapped.record["check_action_name"] == "yes"


def test_concat_template_first() -> None:
    mapping = build(
        {
            "operating_address": {
                "concat": [{"path": "city"}, {"path": "none"}, {"path": "street"}],
                "sep": "；",
            },
            "check_action_name": {"template": "对{party}的检查（{no}）{{注}}"},
            "check_action_no": {"template": "{party}-{missing}"},
            "counterparty_name": {"first": [{"path": "a", "when": {"path": "flag", "eq": 1}}, {"path": "b"}]},
        }
    )
    mapped = map_one(
        mapping,
        {"city": "杭州", "street": "示例路", "party": "某公司", "no": 12, "flag": "0", "a": "A", "b": "B"},
    )
    assert mapped.record["operating_address"] == "杭州；示例路"
    assert mapped.record["check_action_name"] == "对某公司的检查（12）{注}"
    assert "check_action_no" not in mapped.record
    assert mapped.record["counterparty_name"] == "B"
    assert mapped.provenance["counterparty_name"] == "b"


def test_each_maps_a_list_of_objects_with_item_provenance() -> None:
    mapping = build(
        {
            "factors": {
                "each": "factors",
                "fields": {
                    "code": {"path": "code"},
                    "value": {"first": [{"path": "Rtd"}, {"path": "Avg"}], "then": [{"decimal": {}}]},
                    "flag": {"path": "Flag", "then": ["lookup"]},
                },
            },
        },
        kind="iot_reading",
    )
    mapped = map_one(
        mapping,
        {
            "factors": [
                {"code": "a34013", "Rtd": "12.5", "Flag": "N"},
                {"code": "a01001", "Avg": 3, "Flag": "Q"},
            ]
        },
    )
    assert mapped.record["factors"] == [
        {"code": "a34013", "value": "12.5", "flag": "N"},
        {"code": "a01001", "value": "3", "flag": "Q"},
    ]
    assert mapped.provenance["factors"] == "factors"
    assert mapped.provenance["factors[0].value"] == "factors[0].Rtd"
    assert mapped.provenance["factors[1].value"] == "factors[1].Avg"
    assert [(f.code, f.field) for f in mapped.findings] == [("CODE_UNKNOWN", "factors[1].flag")]


def test_each_over_one_xml_element_and_over_nothing() -> None:
    mapping = build({"factors": {"each": "f", "fields": {"code": {"path": "c"}}}}, kind="iot_reading")
    one = map_one(mapping, {"f": {"c": "a1"}})
    assert one.record["factors"] == [{"code": "a1"}]
    assert one.provenance["factors[0].code"] == "f.c"
    assert "factors" not in map_one(mapping, {"f": ""}).record


def test_entries_maps_key_value_pairs() -> None:
    mapping = build(
        {"ext.params": {"entries": "params", "fields": {"name": {"path": "key"}, "v": {"path": "value.x"}}}}
    )
    mapped = map_one(mapping, {"params": {"p1": {"x": "1"}, "p2": {"x": "2"}}})
    assert mapped.record["ext"]["params"] == [{"name": "p1", "v": "1"}, {"name": "p2", "v": "2"}]
    assert mapped.provenance["ext.params[1].v"] == "params.p2.x"


def test_ref_reads_a_gbk_reference_table(tmp_path: Path) -> None:
    (tmp_path / "devices.csv").write_bytes(
        "设备编号,统一社会信用代码,行政区划\nDEV１,91330106MA2H7K3P2R,330106\nDEV2,,330122\n".encode("gbk")
    )
    mapping = build(
        {
            "supervised_object_uscc": {
                "ref": {"table": "devices", "key": {"path": "id"}, "column": "统一社会信用代码"}
            },
            "admin_division_code": {
                "first": [
                    {"meta": "admin_division_code"},
                    {"ref": {"table": "devices", "key": {"path": "id"}, "column": "行政区划"}},
                ]
            },
        },
        kind="iot_reading",
        folder=tmp_path,
        references={"devices": {"file": "devices.csv", "key": "设备编号"}},
    )
    found = map_one(mapping, {"id": "DEV1"})  # key NFKC-normalised: DEV１ == DEV1
    assert found.record["supervised_object_uscc"] == "91330106MA2H7K3P2R"
    assert found.record["admin_division_code"] == "330106"
    assert found.provenance["supervised_object_uscc"] == "id"
    empty_cell = map_one(mapping, {"id": "DEV2"}, {"admin_division_code": "330100"})
    assert "supervised_object_uscc" not in empty_cell.record
    assert empty_cell.record["admin_division_code"] == "330100"
    assert map_one(mapping, {"id": "UNKNOWN"}).record == {"record_kind": "iot_reading"}


def test_ext_fields_and_final_coercions() -> None:
    mapping = build(
        {
            "source_record_id": {"path": "id"},
            "inspector_names": {"path": "who"},
            "ext.count": {"path": "n"},
            "ext.flag": {"path": "missing"},
        }
    )
    mapped = map_one(mapping, {"id": 1234, "who": "张三", "n": 7})
    assert mapped.record == {
        "record_kind": "inspection",
        "source_record_id": "1234",
        "inspector_names": ["张三"],
        "ext": {"count": 7},
    }


# --- conditions ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("when", "source", "holds"),
    [
        ({"path": "t", "eq": 1}, {"t": "1"}, True),
        ({"path": "t", "eq": "1"}, {"t": 1}, True),
        ({"path": "t", "ne": "1"}, {}, True),
        ({"path": "t", "in": ["a", "b"]}, {"t": " b "}, True),
        ({"path": "t", "not_in": ["a"]}, {"t": "a"}, False),
        ({"path": "t", "contains": "x"}, {"t": ["x", "y"]}, True),
        ({"path": "t", "contains_any": ["q", "y"]}, {"t": ["x", "y"]}, True),
        ({"path": "t", "present": True}, {"t": "  "}, False),
        ({"path": "t", "absent": True}, {"t": ""}, True),
        ({"meta": "topic", "eq": "a/b"}, {}, True),
        ({"all": [{"path": "t", "eq": "1"}, {"not": {"path": "u", "present": True}}]}, {"t": "1"}, True),
        ({"any": [{"path": "t", "eq": "2"}, {"path": "u", "eq": "3"}]}, {"t": "1", "u": "3"}, True),
        ({"any": [{"path": "t", "eq": "2"}, {"path": "u", "eq": "3"}]}, {"t": "1"}, False),
    ],
)
def test_when_conditions(when: dict[str, Any], source: dict[str, Any], holds: bool) -> None:
    mapping = build({"check_action_name": {"const": "yes", "when": when}})
    assert ("check_action_name" in map_one(mapping, source, {"topic": "a/b"}).record) is holds


# --- records in the payload ----------------------------------------------------------------------


def test_records_path_list_and_source_paths() -> None:
    mapping = build({"source_record_id": {"path": "id"}}, records="return.records.record")
    mapped = mapping.map({"return": {"records": {"record": [{"id": "a"}, {"id": "b"}]}}}, {})
    assert [(m.record["source_record_id"], m.source_path, m.index) for m in mapped] == [
        ("a", "return.records.record[0]", 0),
        ("b", "return.records.record[1]", 1),
    ]
    assert mapped[1].source == {"id": "b"}


def test_records_from_xml_list_of_one_and_empty_page() -> None:
    mapping = build({"source_record_id": {"path": "id"}}, records="return.records.record")
    (one,) = mapping.map({"return": {"records": {"record": {"id": "only"}}}}, {})
    assert (one.record["source_record_id"], one.source_path) == ("only", "return.records.record")
    assert mapping.map({"return": {"records": ""}}, {}) == []
    assert mapping.map({"return": {}}, {}) == []
    with pytest.raises(MappingError):
        mapping.map({"return": {"records": {"record": 5}}}, {})


def test_payload_array_and_single_payload() -> None:
    mapping = build({"source_record_id": {"path": "id"}})
    assert [(m.source_path, m.index) for m in mapping.map([{"id": "a"}, {"id": "b"}], {})] == [
        ("[0]", 0),
        ("[1]", 1),
    ]
    assert mapping.map({"id": "a"}, {})[0].source_path == ""


def test_mapping_does_not_change_the_source() -> None:
    mapping = build({"ext": {"path": "x"}, "ext.more": {"const": 1}})
    source = {"x": {"a": 1}}
    mapped = map_one(mapping, source)
    assert mapped.record["ext"] == {"a": 1, "more": 1}
    assert source == {"x": {"a": 1}}


# --- golden examples ---------------------------------------------------------------------------

GOLDEN = """\
name: ministry-soap.inspection-test
version: 1
standard_version: "1.0"
kind: inspection
source: ministry-soap
format: soap
records: return.records.record
fields:
  source_record_id: {path: JCBH}
  operation: {path: CZLX, then: [{lookup: {aliases: {I: i, U: u, D: d}}}]}
  checked_at: {path: JCSJ, then: [{datetime: yyyyMMddHHmmss}]}
  inspector_names: {path: JCRY, then: [{split: ",，、"}]}
examples:
  - name: one record
    payload: |
      <soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>
      <ns2:R xmlns:ns2="urn:x"><return><records><record>
        <JCBH>J1</JCBH><CZLX>I</CZLX><JCSJ>20250603093000</JCSJ><JCRY>沈示例,韩样例</JCRY>
      </record></records></return></ns2:R></soap:Body></soap:Envelope>
    expect:
      - record:
          record_kind: inspection
          source_record_id: J1
          operation: {OPERATION}
          checked_at: "2025-06-03T09:30:00+08:00"
          inspector_names: [沈示例, 韩样例]
  - name: a bad time
    payload_file: page.json
    expect:
      - errors: [{code: TYPE, field: checked_at}]
"""


def golden(tmp_path: Path, operation: str) -> CompiledMapping:
    (tmp_path / "page.json").write_text(
        '{"return": {"records": {"record": [{"JCBH": "J2", "JCSJ": "2025-06"}]}}}', encoding="utf-8"
    )
    path = tmp_path / "m.yaml"
    path.write_text(GOLDEN.replace("{OPERATION}", operation), encoding="utf-8")
    return load_mapping(path)


def test_golden_examples_pass(tmp_path: Path) -> None:
    from connectors.codecs import decode

    def soap_or_json(fmt: str, data: bytes) -> Any:
        return decode("json" if data.startswith(b"{") else fmt, data)

    assert run_examples(golden(tmp_path, "i"), passthrough, soap_or_json) == []


def test_golden_example_failure_shows_a_field_level_diff(tmp_path: Path) -> None:
    from connectors.codecs import decode

    failures = run_examples(
        golden(tmp_path, "u"),
        passthrough,
        lambda fmt, data: decode("json" if data.startswith(b"{") else fmt, data),
    )
    assert failures == [
        ExampleFailure(
            "ministry-soap.inspection-test",
            "one record",
            "record 1 (return.records.record): record differs:\n    operation: expected 'u', got 'i'",
        )
    ]


def test_examples_compare_errors_warnings_and_record_count(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(
        textwrap.dedent("""\
        name: t.count
        version: 1
        standard_version: "1.0"
        kind: inspection
        source: t
        format: json
        fields:
          operation: {path: op, then: [lookup]}
        examples:
          - name: two expected, one given
            payload: {op: zz}
            expect:
              - errors: [{code: REQUIRED, field: operation}]
                warnings: []
              - record: {}
        """),
        encoding="utf-8",
    )
    (failure_count, failure_missing, failure_extra) = run_examples(load_mapping(path), passthrough)
    assert failure_count.message == "expected 2 record(s), the payload gave 1"
    assert (
        failure_missing.message == "record 1 (payload): expected error REQUIRED on operation was not raised"
    )
    assert failure_extra.message.startswith(
        "record 1 (payload): unexpected error CODE_UNKNOWN on operation: "
    )


def test_example_without_decoder_fails_readably(tmp_path: Path) -> None:
    (failure,) = run_examples(golden(tmp_path, "i"), passthrough)[:1]
    assert failure.message == "no decoder given for format soap"


# --- performance smoke (measured and printed, not asserted) ------------------------------------

PENALTY_FIELDS: dict[str, Any] = {
    "source_record_id": {"path": "id"},
    "operation": {"path": "status", "then": [{"map": {"normal": "i", "revoked": "d"}}]},
    "provider_uscc": {"path": "enforcementOrgCode", "then": ["identifier"]},
    "admin_division_code": {"path": "regionCode"},
    "submitted_at": {"path": "updatedAt", "then": [{"datetime": "iso"}]},
    "supervision_item_code": {"path": "itemCode"},
    "penalty_action_name": {"template": "对{partyName}的行政处罚"},
    "penalty_action_no": {"path": "caseNo"},
    "implementing_org_name": {"path": "enforcementOrg"},
    "implementing_org_uscc": {"path": "enforcementOrgCode", "then": ["identifier"]},
    "supervised_object_name": {"path": "partyName"},
    "case_source": {"path": "caseSource"},
    "check_action_no": {"path": "checkActionNo"},
    "counterparty_name": {"path": "partyName"},
    "counterparty_nature": {"path": "partyType", "then": [{"map": {"1": "2", "2": "1"}}]},
    "counterparty_id_type": {"const": "001"},
    "counterparty_id_no": {"first": [{"path": "creditCode"}, {"path": "idCardNo"}], "then": ["identifier"]},
    "registered_address": {"path": "address"},
    "operating_address": {"path": "address"},
    "illegal_facts": {"path": "illegalFacts"},
    "legal_basis": {"concat": [{"path": "violatedProvision"}, {"path": "penaltyBasis"}], "sep": "；"},
    "procedure_type": {"path": "procedure", "then": [{"map": {"general": "02", "summary": "01"}}]},
    "hearing_held": {"path": "hearing", "then": ["boolean"]},
    "major_case": {"path": "major", "then": ["boolean"]},
    "decision_doc_no": {"path": "decisionNo"},
    "decided_at": {"path": "decisionDate", "then": [{"date": "yyyy-MM-dd"}]},
    "penalty_types": {
        "path": "penaltyCategories",
        "then": [{"split": ","}, {"map": {"1": "罚款", "2": "警告"}}],
    },
    "fine_amount_yuan": {"path": "fineAmount", "then": [{"decimal": {"unit": "万元", "places": 2}}]},
    "penalty_result": {"path": "penaltyContent"},
    "ext.consecutive_daily": {"path": "consecutiveDaily", "then": ["boolean"]},
    "ext.created_at": {"path": "createdAt"},
    "ext.revoke_reason": {"path": "revokeReason"},
    "ext.confiscated": {"path": "confiscatedAmount", "then": [{"decimal": {"places": 2}}]},
    "ext.id_card": {"path": "idCardNo"},
    "ext.legal_rep": {"path": "legalRepresentative"},
}


def test_performance_smoke_penalty_record() -> None:
    import orjson

    page = orjson.loads(
        Path(__file__).parents[2].joinpath("config/samples/eco-rest/penalties-page-1.json").read_bytes()
    )
    mapping = build(PENALTY_FIELDS, kind="penalty", records="items")
    mapped = mapping.map(page, {})
    assert all(m.findings == [] for m in mapped)
    assert mapped[0].record["fine_amount_yuan"] == "236000.00"
    rounds = 2000
    started = time.perf_counter()
    for _ in range(rounds):
        mapping.map(page, {})
    per_record_us = (time.perf_counter() - started) / (rounds * len(mapped)) * 1e6
    print(f"\nmapping one penalty record ({len(PENALTY_FIELDS)} fields): {per_record_us:.1f} µs")
