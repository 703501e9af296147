"""Keys stored in the database as principals: cached briefly, a revocation seen within the TTL
(at once with ``forget``), and chained after the config's tokens."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from gateway.api.authz import ChainedPrincipals, Principal, Role, SettingsPrincipals, StoredPrincipals
from gateway.settings import ApiSettings
from gateway.stores.api_keys import KeyStore
from gateway.stores.db import create_engine_for, init_schema


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = create_engine_for(f"sqlite:///{tmp_path / 'keys.sqlite'}")
    init_schema(engine)
    yield engine
    engine.dispose()


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_revocation_elsewhere_takes_effect_within_the_ttl(engine: Engine) -> None:
    keys, clock = KeyStore(engine), Clock()
    principals = StoredPrincipals(keys, ttl_s=2.0, clock=clock)
    issued = keys.issue(name="eco", role="department", department="eco", actor="test")
    assert principals.resolve(issued.key) == Principal("eco", Role.DEPARTMENT, "eco")

    KeyStore(engine).revoke(issued.record.id)  # another instance revokes it
    clock.now += 1.0
    assert principals.resolve(issued.key) is not None  # still cached
    clock.now += 1.5
    assert principals.resolve(issued.key) is None


def test_forget_drops_the_cache_at_once_and_unknown_tokens_are_none(engine: Engine) -> None:
    keys, clock = KeyStore(engine), Clock()
    principals = StoredPrincipals(keys, ttl_s=60.0, clock=clock)
    issued = keys.issue(name="li", role="ops", department=None, actor="test")
    assert principals.resolve(issued.key) == Principal("li", Role.OPS)
    assert principals.resolve("sgw_unknown") is None
    keys.revoke(issued.record.id)
    principals.forget()
    assert principals.resolve(issued.key) is None


def test_a_rotated_key_lives_for_its_grace_period(engine: Engine) -> None:
    keys = KeyStore(engine)
    old = keys.issue(name="eco", role="department", department="eco", actor="test")
    rotated = keys.rotate(old.record.id, grace_s=3600, actor="test")
    assert rotated is not None
    new, _, after = rotated
    assert keys.find_active(old.key) is not None and keys.find_active(new.key) is not None
    assert after.replaced_by == new.record.id and after.expires_at is not None
    keys.rotate(old.record.id, grace_s=0, actor="test")
    assert keys.find_active(old.key) is None


def test_config_tokens_come_first_then_stored_keys(engine: Engine) -> None:
    keys = KeyStore(engine)
    issued = keys.issue(name="wang", role="viewer", department=None, actor="test")
    chained = ChainedPrincipals([SettingsPrincipals(ApiSettings(admin_token="adm-token-123"), ()),  # type: ignore[arg-type]
                                 StoredPrincipals(keys)])
    assert chained.resolve("adm-token-123") == Principal("admin", Role.ADMIN)
    assert chained.resolve(issued.key) == Principal("wang", Role.VIEWER)
    assert chained.resolve("nothing") is None
