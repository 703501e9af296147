"""The plan of ``sgw connectors apply``: created, changed, removed, unchanged, for connectors and mappings."""

from __future__ import annotations

from gateway.connector_apply import Folder, plan


def test_the_plan_says_what_applying_a_folder_does() -> None:
    current = {"a": {"id": "a", "type": "http_push"}, "b": {"id": "b", "type": "http_push"},
               "c": {"id": "c", "type": "http_push"}}
    wanted = Folder(connectors={"a": {"id": "a", "type": "http_push"}, "b": {"id": "b", "type": "rest_poll"},
                                "d": {"id": "d", "type": "http_push"}},
                    mappings={"m": "same", "n": "new", "o": "changed"})
    result = plan(current, {"m": "same", "o": "old"}, wanted)
    assert (result.created, result.changed, result.removed, result.unchanged) == (["d"], ["b"], ["c"], ["a"])
    assert (result.mappings_created, result.mappings_changed, result.mappings_unchanged) == (["n"], ["o"], ["m"])
    assert result.changes_anything
    assert result.lines()[:3] == ["connector d: created", "connector b: changed", "connector c: removed"]


def test_a_folder_equal_to_the_registry_changes_nothing() -> None:
    same = {"a": {"id": "a", "type": "http_push"}}
    result = plan(same, {"m": "x"}, Folder(connectors=dict(same), mappings={"m": "x"}))
    assert not result.changes_anything
    assert result.lines() == ["connector a: unchanged", "mapping m: unchanged"]
