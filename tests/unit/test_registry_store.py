"""The registry store: seeding from the config file and who wins afterwards, tombstones, mapping
versions, routing, and the revision every change moves."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.stores.db import create_engine_for, init_schema
from gateway.stores.registry import SqlRegistry

PUSH = {"id": "eco-push", "type": "http_push", "mapping": "eco-rest.penalty", "department": "eco", "options": {}}
POLL = {"id": "eco-poll", "type": "rest_poll", "mapping": "eco-rest.penalty", "options": {"base_url": "http://x"}}
ROUTES = [{"kinds": ["*"], "adapters": ["data-centre"]}]


@pytest.fixture
def registry(tmp_path: Path) -> SqlRegistry:
    engine = create_engine_for(f"sqlite:///{tmp_path / 'registry.sqlite'}")
    init_schema(engine)
    return SqlRegistry(engine)


def test_the_config_file_seeds_and_keeps_following_until_the_api_changes_an_entry(registry: SqlRegistry) -> None:
    first = registry.seed([PUSH, POLL], {"m": "name: m\n"}, ROUTES)
    assert first.connectors_added == ["eco-push", "eco-poll"] and first.mappings_added == ["m"]
    assert registry.revision() == 1
    assert registry.seed([PUSH, POLL], {"m": "name: m\n"}, ROUTES).connectors_updated == []
    assert registry.revision() == 1  # nothing changed, nothing bumped

    changed_in_file = {**POLL, "options": {"base_url": "http://y"}}
    assert registry.seed([PUSH, changed_in_file], {"m": "name: m\n"}, ROUTES).connectors_updated == ["eco-poll"]
    registry.put_connector({**PUSH, "meta": {"a": 1}}, actor="admin:x", origin="api")
    later = registry.seed([{**PUSH, "department": "other"}, changed_in_file], {"m": "name: m\n# v2\n"}, ROUTES)
    assert later.connectors_updated == [] and later.mappings_updated == ["m"]
    push = registry.connector("eco-push")
    assert push is not None and push.config["meta"] == {"a": 1} and push.version == 2 and push.origin == "api"


def test_a_connector_deleted_through_the_api_stays_deleted_and_one_gone_from_the_file_goes(
        registry: SqlRegistry) -> None:
    registry.seed([PUSH, POLL], {}, ROUTES)
    assert registry.delete_connector("eco-push", actor="admin:x", origin="api") is not None
    assert registry.delete_connector("eco-push", actor="admin:x", origin="api") is None
    report = registry.seed([PUSH], {}, ROUTES)  # eco-poll left the file; eco-push is still in it
    assert report.connectors_removed == ["eco-poll"] and report.connectors_added == []
    assert registry.connectors() == []
    assert {r.id for r in registry.connectors(include_deleted=True)} == {"eco-push", "eco-poll"}
    revived = registry.put_connector(PUSH, actor="admin:x", origin="api")
    assert not revived.deleted and revived.version == 3 and not revived.paused


def test_pause_is_kept_and_every_change_moves_the_revision(registry: SqlRegistry) -> None:
    registry.seed([PUSH], {}, ROUTES)
    before = registry.revision()
    paused = registry.set_paused("eco-push", True, actor="ops:y")
    assert paused is not None and paused.paused and registry.revision() == before + 1
    assert registry.set_paused("eco-push", True, actor="ops:y") is not None
    assert registry.revision() == before + 1  # already paused: no change
    updated = registry.put_connector({**PUSH, "meta": {"b": 2}}, actor="admin:x", origin="api")
    assert updated.paused  # a new config does not resume it
    assert registry.set_paused("nope", True, actor="ops:y") is None


def test_every_mapping_version_is_kept_and_the_highest_is_current(registry: SqlRegistry) -> None:
    registry.add_mapping_version("m", "v1", actor="a", origin="api")
    registry.add_mapping_version("m", "v2", actor="b", origin="api")
    registry.add_mapping_version("n", "n1", actor="a", origin="api")
    assert [(v.name, v.version, v.spec) for v in registry.current_mappings()] == [("m", 2, "v2"), ("n", 1, "n1")]
    assert [v.spec for v in registry.mapping_versions("m")] == ["v1", "v2"]
    first = registry.mapping_version("m", 1)
    assert first is not None and first.created_by == "a"
    assert registry.mapping_version("m", 3) is None and registry.mapping_versions("x") == []


def test_routing_is_seeded_once_then_changed_through_the_api(registry: SqlRegistry) -> None:
    registry.seed([], {}, ROUTES)
    changed = registry.put_routing([], actor="admin:x", origin="api")
    assert changed.routes == [] and changed.version == 2
    assert registry.seed([], {}, ROUTES).routing == "unchanged"


def test_apply_puts_mappings_and_connectors_and_removes_the_others_in_one_go(registry: SqlRegistry) -> None:
    registry.seed([PUSH, POLL], {}, ROUTES)
    registry.apply([{**POLL, "department": "eco"}], {"m": "text"}, actor="cli:z", remove_others=True)
    rows = registry.connectors()
    assert [(r.id, r.origin, r.config["department"]) for r in rows] == [("eco-poll", "apply", "eco")]
    assert [v.name for v in registry.current_mappings()] == ["m"]
