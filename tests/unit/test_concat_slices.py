"""A ``concat`` whose parts slice one converted stamp gives what its parts give one by one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mapping.compiler import CompiledMapping, compile_mapping
from mapping.concat_slices import runs
from mapping.spec import MappingSpec, ValueSpec
from mapping.standard import load_standard

_STAMP_PARTS: list[dict[str, Any]] = [
    {"path": "id"}, {"const": ":"},
    *({"path": "ts", "then": [{"datetime": "epoch_ms"}, {"slice": bounds}]}
      for bounds in ([0, 4], [5, 7], [8, 10], [11, 13], [14, 16], [17, 19], [19, None], [30, 40])),
]


def _mapping(parts: list[dict[str, Any]]) -> CompiledMapping:
    spec = MappingSpec.model_validate({
        "name": "t", "version": 1, "standard_version": "1.0", "kind": "iot_reading", "source": "t",
        "format": "json", "fields": {"source_record_id": {"concat": parts},
                                     "observed_at": {"path": "ts", "then": [{"datetime": "epoch_ms"}]}},
    })
    return compile_mapping(spec, path=Path("t.yaml"), standard=load_standard("1.0"))


def _unfused(parts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # a `when` that always holds for a present stamp keeps each part on its own
    return [{**p, "when": {"path": p["path"], "present": True}} if "then" in p else p for p in parts]


def _outcome(mapping: CompiledMapping, payload: Any) -> Any:
    (mapped,) = mapping.map(payload, {})
    return mapped.record, [(f.code, f.field, f.message_en, f.message_zh, f.severity) for f in mapped.findings]


@pytest.mark.parametrize("ts", [1749522600000, 1749522600001, 0, "1749522600000", " 1749522600000 ", 1.5e12,
                                "abc", "", None, True, [1749522600000, 1749522660000], {"x": 1}, -5,
                                10**30, "2025-06-10T10:30:00+08:00"])
def test_a_fused_run_gives_what_its_parts_give(ts: Any) -> None:
    fused, unfused = _mapping(_STAMP_PARTS), _mapping(_unfused(_STAMP_PARTS))
    payload = {"id": "D1", "ts": ts}
    assert _outcome(fused, payload) == _outcome(unfused, payload)
    assert _outcome(fused, payload) == _outcome(fused, payload)  # and again, through its memo


_TEXT_PARTS: list[dict[str, Any]] = [
    {"path": "name", "then": ["upper", {"slice": bounds}]} for bounds in ([0, 3], [3, 6], [6, None], [-2, None])
]


@pytest.mark.parametrize("name", ["ab  cd ef", "abc", "a", "   x", "中文 名称 示例", 12345678, ["ab cd", "efgh"]])
def test_sliced_texts_are_trimmed_and_empty_pieces_dropped_as_before(name: Any) -> None:
    fused, unfused = _mapping(_TEXT_PARTS), _mapping(_unfused(_TEXT_PARTS))
    payload = {"id": "D1", "ts": 0, "name": name}
    assert _outcome(fused, payload) == _outcome(unfused, payload)


def test_a_bad_stamp_is_reported_once_per_part_as_before() -> None:
    _, findings = _outcome(_mapping(_STAMP_PARTS), {"id": "D1", "ts": "abc"})
    assert [f[1] for f in findings].count("source_record_id") == 8


def test_only_consecutive_parts_of_one_path_and_steps_are_fused() -> None:
    def part(path: str, then: list[Any]) -> ValueSpec:
        return ValueSpec.model_validate({"path": path, "then": then})

    epoch = {"datetime": "epoch_ms"}
    specs = [part("ts", [epoch, {"slice": [0, 4]}]), part("ts", [epoch, {"slice": [5, 7]}]),
             ValueSpec.model_validate({"const": "-"}),
             part("ts", [epoch, {"slice": [8, 10]}]), part("other", [epoch, {"slice": [0, 4]}]),
             part("other", [epoch, {"slice": [5, 7]}]), part("other", ["upper", {"slice": [0, 1]}]),
             part("x", [{"slice": [0, 1]}]), part("x", [{"slice": [1, 2]}, "upper"])]
    assert runs(specs) == [(0, 2), (4, 6)]
