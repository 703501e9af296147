"""Loading mapping files: every problem reported as ``file:line: path: message``."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from gateway.errors import ConfigError
from mapping.catalog import load_catalog
from mapping.compiler import load_mapping
from mapping.loader import read_yaml

HEADER = """\
name: test.inspection
version: 1
standard_version: "1.0"
kind: inspection
source: ministry-soap
format: json
"""


def write(folder: Path, body: str, name: str = "m.yaml", header: str = HEADER) -> Path:
    path = folder / name
    path.write_text(header + textwrap.dedent(body), encoding="utf-8")
    return path


def problems_of(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_mapping(path)
    return info.value.problems


def test_a_valid_file_loads(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        fields:
          source_record_id: {path: JCBH}
        """,
    )
    mapping = load_mapping(path)
    assert (mapping.name, mapping.version, mapping.kind, mapping.format) == (
        "test.inspection",
        1,
        "inspection",
        "json",
    )
    assert mapping.spec_path == path


def test_unknown_field_names_file_line_and_field(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        fields:
          source_record_id: {path: JCBH}
          cheked_at: {path: JCSJ}
        """,
    )
    assert problems_of(path) == [
        f"{path}:9: fields.cheked_at: unknown field 'cheked_at' of kind inspection"
        " (did you mean 'checked_at'?)"
    ]


def test_every_problem_is_listed_with_its_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        fields:
          source_record_id: {path: "JCBH["}
          checked_at:
            path: JCSJ
            then:
              - datetime: yyyyMMddHHmmss
              - dattime: iso
          operation: {path: CZLX, then: [{lookup: no_table}]}
          record_id: {path: ID}
          entrusted_org_name: {path: X, when: {path: Y, equals: 1}}
          submitted_at: {jmespath: "a[?"}
        """,
    )
    problems = problems_of(path)
    assert len(problems) == 6
    assert problems[0].startswith(f"{path}:8: fields.source_record_id.path: path 'JCBH['")
    assert (
        problems[1]
        == f"{path}:13: fields.checked_at.then[1]: unknown transform 'dattime' (did you mean 'datetime'?)"
    )
    assert problems[2] == f"{path}:14: fields.operation.then[0]: unknown code table 'no_table'"
    assert (
        problems[3] == f"{path}:15: fields.record_id: record_id is filled by the gateway and cannot be mapped"
    )
    assert problems[4].startswith(
        f"{path}:16: fields.entrusted_org_name.when: a condition leaf has exactly one"
    )
    assert problems[5].startswith(f"{path}:17: fields.submitted_at.jmespath: JMESPath 'a[?' does not parse")


def test_shape_errors_carry_lines(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        fields:
          source_record_id: {path: JCBH, const: x}
          operation: {paht: CZLX}
          checked_at: {path: JCSJ, then: [5]}
        extra_key: 1
        """,
    )
    problems = problems_of(path)
    assert f"{path}:8: fields.source_record_id: exactly one source" in problems[0]
    assert any(p.startswith(f"{path}:9: fields.operation.paht: unknown key") for p in problems)
    assert any(p.startswith(f"{path}:10: fields.checked_at.then[0]: ") for p in problems)
    assert any(p == f"{path}:11: extra_key: unknown key" for p in problems)


def test_missing_required_key_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, "fields: {}\n", header="name: x\nversion: 1\n")
    problems = problems_of(path)
    assert f"{path}:1: kind: required key is missing" in problems
    assert f"{path}:1: standard_version: required key is missing" in problems


def test_unknown_kind_and_version(tmp_path: Path) -> None:
    bad_kind = write(
        tmp_path, "fields: {}\n", "k.yaml", HEADER.replace("kind: inspection", "kind: inspections")
    )
    assert problems_of(bad_kind) == [
        f"{bad_kind}:4: kind: unknown kind 'inspections' (did you mean 'inspection'?)"
    ]
    bad_version = write(tmp_path, "fields: {}\n", "v.yaml", HEADER.replace('"1.0"', '"9.9"'))
    (problem,) = problems_of(bad_version)
    assert problem.startswith(f"{bad_version}:3: standard_version: VERSION_UNSUPPORTED")


def test_unknown_item_field_in_each(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        fields:
          check_items:
            each: items
            fields:
              nmae: {path: n}
        """,
    )
    (problem,) = problems_of(path)
    assert problem.startswith(f"{path}:11: fields.check_items.fields.nmae: unknown item field 'nmae'")


def test_each_on_a_field_that_is_not_a_list_of_objects(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        fields:
          checked_at: {each: items, fields: {a: {path: a}}}
        """,
    )
    (problem,) = problems_of(path)
    assert "fields.checked_at.each: 'each' makes a list of objects, but the field is datetime" in problem


def test_missing_payload_file_and_reference(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        references:
          devices: {file: nowhere.csv, key: id}
        fields:
          source_record_id: {ref: {table: devices, key: {path: id}, column: x}}
          operation: {ref: {table: nodev, key: {path: id}, column: x}}
        examples:
          - name: one
            payload_file: missing.json
            expect: [{errors: []}]
        """,
    )
    problems = problems_of(path)
    assert len(problems) == 3
    assert f"{path}:14: examples[0].payload_file: no such file: missing.json" in problems
    assert any(p.startswith(f"{path}:8: references.devices: cannot read") for p in problems)
    assert (
        f"{path}:11: fields.operation.ref.table: unknown reference table 'nodev' (declared: devices)"
        in problems
    )


def test_yaml_is_read_strictly(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(
        "a: 01\nb: yes\nc: 2025-06-12\nd: 10:30\ne: 12\nf: 1.5\ng: true\nh: ~\n", encoding="utf-8"
    )
    data, source_map = read_yaml(path)
    assert data == {
        "a": "01",
        "b": "yes",
        "c": "2025-06-12",
        "d": "10:30",
        "e": 12,
        "f": 1.5,
        "g": True,
        "h": None,
    }
    assert source_map.line(("d",)) == 4


def test_duplicate_keys_are_refused(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        fields:
          source_record_id: {path: A}
          source_record_id: {path: B}
        """,
    )
    assert problems_of(path) == [f"{path}:9: fields.source_record_id: duplicate key"]


def test_yaml_syntax_error_has_a_line(tmp_path: Path) -> None:
    path = write(tmp_path, "fields:\n  a: {path: [\n")
    (problem,) = problems_of(path)
    assert problem.startswith(f"{path}:") and "YAML" in problem


def test_catalog_loads_a_folder_and_refuses_duplicate_names(tmp_path: Path) -> None:
    write(tmp_path, "fields: {source_record_id: {path: A}}\n", "a.yaml")
    catalog = load_catalog(tmp_path)
    assert list(catalog) == ["test.inspection"]
    write(tmp_path, "fields: {source_record_id: {path: B}}\n", "b.yaml")
    with pytest.raises(ConfigError) as info:
        load_catalog(tmp_path)
    assert info.value.problems == [
        f"{tmp_path / 'b.yaml'}:1: name: duplicate mapping name 'test.inspection'"
        f" (also in {tmp_path / 'a.yaml'})"
    ]


def test_catalog_collects_problems_of_every_file(tmp_path: Path) -> None:
    write(tmp_path, "fields: {nope: {path: A}}\n", "a.yaml", HEADER.replace("test.inspection", "a"))
    write(tmp_path, "fields: {nada: {path: A}}\n", "b.yaml", HEADER.replace("test.inspection", "b"))
    with pytest.raises(ConfigError) as info:
        load_catalog(tmp_path)
    assert [p.split(": ")[1] for p in info.value.problems] == ["fields.nope", "fields.nada"]


def test_example_names_are_unique(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        fields:
          source_record_id: {path: A}
        examples:
          - {name: same, payload: {A: x}, expect: [{errors: []}]}
          - {name: same, payload: {A: y}, expect: [{errors: []}]}
        """,
    )
    assert problems_of(path) == [f"{path}:11: examples[1].name: another example is named 'same'"]


def test_an_unquoted_version_gets_a_hint(tmp_path: Path) -> None:
    path = write(tmp_path, "fields: {}\n", header=HEADER.replace('"1.0"', "1.0"))
    assert problems_of(path) == [
        f"{path}:3: standard_version: Input should be a valid string (quote it: YAML reads it as a number)"
    ]
