from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.redis_keys import drop_keys

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "config" / "samples"
MAPPINGS = ROOT / "config" / "mappings"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A key prefix of the test's own on the real Redis; its keys are deleted afterwards."""
    name = f"sgw-test-{uuid.uuid4().hex[:10]}"
    yield name
    drop_keys(f"{name}:*")
