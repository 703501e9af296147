from __future__ import annotations

from pathlib import Path

from gateway.stores.connector_state import SqlConnectorState
from gateway.stores.db import create_engine_for, init_schema


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
