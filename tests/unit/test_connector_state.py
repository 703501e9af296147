from __future__ import annotations

from pathlib import Path

from gateway.stores.connector_state import SqlConnectorState
from gateway.stores.db import create_engine_for, init_schema
from tests.conftest import MAPPINGS


async def test_state_survives_a_new_engine_and_is_kept_per_connector(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.sqlite'}"
    engine = create_engine_for(url)
    init_schema(engine)
    soap, rest = SqlConnectorState(engine, "soap"), SqlConnectorState(engine, "rest")
    await soap.save("cursor", {"window_end": "20250603000000", "page": 2})
    await soap.save("cursor", {"window_end": "20250604000000", "page": 1})
    await rest.save("cursor", "opaque-1")
    engine.dispose()

    again = create_engine_for(url)
    assert await SqlConnectorState(again, "soap").load("cursor") == {"window_end": "20250604000000", "page": 1}
    assert await SqlConnectorState(again, "rest").load("cursor") == "opaque-1"
    assert await SqlConnectorState(again, "rest").load("other") is None
    await SqlConnectorState(again, "rest").clear("cursor")
    assert await SqlConnectorState(again, "rest").load("cursor") is None
    again.dispose()


def test_pollers_share_a_redis_lease_when_redis_is_configured(tmp_path: Path) -> None:
    from connectors.base import HeldLease
    from gateway.leases import RedisPollLease
    from gateway.runtime import Runtime
    from gateway.settings import load_settings

    config = tmp_path / "gateway.yaml"
    config.write_text(f"mappings_dir: {MAPPINGS}\nstores: {{database_url: 'sqlite:///{tmp_path / 'g.sqlite'}'}}\n",
                      encoding="utf-8")
    embedded = Runtime(load_settings(config, environ={}))
    assert isinstance(embedded._connector_context("soap").lease, HeldLease)
    scaled = Runtime(load_settings(config, environ={"SGW_STORES__REDIS_URL": "redis://127.0.0.1:6379/0"}))
    lease = scaled._connector_context("soap").lease
    assert isinstance(lease, RedisPollLease)
    embedded.engine.dispose()
    scaled.engine.dispose()
