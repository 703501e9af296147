"""The audit log, department and key stores on the real PostgreSQL: the same scenarios as on
SQLite; concurrent audit writers serialised on the chain head (SELECT ... FOR UPDATE) from
several pooled connections."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from tests.pg import gateway_engine
from tests.unit.test_audit_log import (  # noqa: F401  (run here on PostgreSQL)
    test_a_changed_row_is_found_at_its_seq,
    test_a_deleted_row_is_found,
    test_concurrent_writers_keep_one_unbroken_chain,
    test_entries_are_listed_newest_first_and_filtered,
    test_reordered_rows_are_found,
    test_rows_deleted_from_the_end_are_found_by_the_head,
    test_the_database_refuses_to_change_or_delete_entries,
)
from tests.unit.test_department_service import (  # noqa: F401
    test_a_department_with_connectors_or_from_config_is_not_deleted_and_deletion_revokes_keys,
    test_config_departments_are_seeded_and_merged_without_losing_api_edits,
    test_identifiers_and_levels_are_checked,
    test_key_roles_and_departments_must_agree,
)
from tests.unit.test_stored_principals import (  # noqa: F401
    test_a_revocation_elsewhere_takes_effect_within_the_ttl,
    test_a_rotated_key_lives_for_its_grace_period,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def engine() -> Iterator[Engine]:
    with gateway_engine("sgw_audit") as engine:
        yield engine
