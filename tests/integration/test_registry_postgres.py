"""The connector and mapping registry on the real PostgreSQL: the same scenarios as on SQLite."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gateway.stores.registry import SqlRegistry
from tests.pg import gateway_engine
from tests.unit.test_registry_store import (  # noqa: F401  (run here on PostgreSQL)
    test_a_connector_deleted_through_the_api_stays_deleted_and_one_gone_from_the_file_goes,
    test_apply_puts_mappings_and_connectors_and_removes_the_others_in_one_go,
    test_every_mapping_version_is_kept_and_the_highest_is_current,
    test_pause_is_kept_and_every_change_moves_the_revision,
    test_routing_is_seeded_once_then_changed_through_the_api,
    test_the_config_file_seeds_and_keeps_following_until_the_api_changes_an_entry,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def registry() -> Iterator[SqlRegistry]:
    with gateway_engine("sgw_registry") as engine:
        yield SqlRegistry(engine)
