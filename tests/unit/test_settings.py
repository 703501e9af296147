from __future__ import annotations

from pathlib import Path

import pytest

from gateway.errors import ConfigError
from gateway.registry import adapter_registry, connector_registry
from gateway.settings import load_settings

GOOD = """
mappings_dir: mappings
departments:
  - {code: dept-a, name: 甲部门}
connectors:
  - {id: push-a, type: http_push, mapping: eco-rest.penalty, department: dept-a}
adapters:
  - {id: data-centre, type: data_centre, options: {url: "sqlite:///x.sqlite"}}
routing:
  - {kinds: ["*"], adapters: [data-centre]}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gateway.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_valid_config_loads_with_paths_relative_to_the_file(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, GOOD), environ={})
    assert settings.mappings_dir == (tmp_path / "mappings").resolve()
    assert settings.adapters_for("penalty") == ("data-centre",)


def test_every_problem_is_reported_with_its_path(tmp_path: Path) -> None:
    bad = GOOD.replace("department: dept-a}", "department: dept-b, polll_interval_s: 3}")
    bad = bad.replace("adapters: [data-centre]", "adapters: [data-center]")
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, bad), environ={})
    text = "\n".join(caught.value.problems)
    assert "connectors[0].polll_interval_s" in text
    assert "Extra inputs are not permitted" in text


def test_cross_references_are_checked(tmp_path: Path) -> None:
    bad = GOOD.replace("adapters: [data-centre]", "adapters: [data-center]")
    bad = bad.replace("department: dept-a}", "department: dept-b}")
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, bad), environ={})
    assert any("routing[0].adapters[0]: unknown adapter 'data-center'" in p for p in caught.value.problems)
    assert any("connectors[0].department: unknown department 'dept-b'" in p for p in caught.value.problems)


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, GOOD), environ={"SGW_STORES__DATABASE_URL": "postgresql+psycopg://h/db"})
    assert settings.stores.database_url == "postgresql+psycopg://h/db"


def test_references_to_the_environment_reach_list_entries(tmp_path: Path) -> None:
    """An adapter's database URL (a list entry, out of SGW_<SECTION>__<KEY>'s reach) from the
    environment, whole or in part; $${...} is literal text, a $ alone stays, values are not expanded again."""
    config = GOOD.replace('options: {url: "sqlite:///x.sqlite"}',
                          'options: {url: "postgresql://sgw:${DC_PASSWORD}@${DC_HOST}/dc", '
                          'feedback_table: "ex_$${KEPT}_pa$$word"}')
    settings = load_settings(write(tmp_path, config), environ={"DC_PASSWORD": "s3cr${ET}", "DC_HOST": "db.local"})
    options = settings.adapters[0].options
    assert options["url"] == "postgresql://sgw:s3cr${ET}@db.local/dc"
    assert options["feedback_table"] == "ex_${KEPT}_pa$$word"


def test_an_unset_variable_is_an_error_naming_the_setting_not_a_value(tmp_path: Path) -> None:
    config = GOOD.replace('options: {url: "sqlite:///x.sqlite"}', 'options: {url: "postgresql://sgw:${DC_PASSWORD}@h/dc"}')
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, config), environ={"OTHER": "x"})
    assert caught.value.problems == [
        f"{tmp_path / 'gateway.yaml'}: adapters[0].options.url: environment variable DC_PASSWORD is not set "
        "(referenced as ${DC_PASSWORD})"]


def test_key_hashes_must_be_digests(tmp_path: Path) -> None:
    bad = GOOD.replace("name: 甲部门}", "name: 甲部门, api_key_hashes: [plaintext-key]}")
    with pytest.raises(ConfigError, match="sha256"):
        load_settings(write(tmp_path, bad), environ={})


def test_unknown_plugin_type_suggests_the_nearest_name() -> None:
    with pytest.raises(ConfigError, match="did you mean 'data_centre'"):
        adapter_registry().get("data_center", path="adapters[0].type")
    with pytest.raises(ConfigError, match="did you mean 'http_push'"):
        connector_registry().get("http-push")
