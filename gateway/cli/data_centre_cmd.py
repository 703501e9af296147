"""``sgw data-centre migrate``: the 前置库 schema brought to the head Alembic revision, for DBAs.

The adapter is reached through the registry (the CLI never imports a plugin directly); the same
``upgrade head`` runs at start when the adapter's ``create_tables`` is on.
"""

from __future__ import annotations

from pydantic import ValidationError

from gateway.errors import ConfigError
from gateway.registry import adapter_registry

ADAPTER_TYPE = "data_centre"


def migrate(url: str, db_schema: str | None) -> str | None:
    """``upgrade head``; returns the revision the 前置库 is at afterwards."""
    plugin = adapter_registry().get(ADAPTER_TYPE)
    try:
        config = plugin.config_model.model_validate({"url": url, "db_schema": db_schema})
    except ValidationError as exc:
        raise ConfigError([f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]) from exc
    revision: str | None = plugin.factory.migrate_schema(config)
    return revision
