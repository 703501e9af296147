"""`sgw run` moves its start-up objects out of the cyclic collector's view and collects the young
generation less often; cyclic garbage made afterwards is still collected."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from gateway.gc_tuning import YOUNG_THRESHOLD, tune_for_throughput


@pytest.fixture
def restored_gc() -> Iterator[None]:
    threshold = gc.get_threshold()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)


def test_tuning_freezes_start_up_objects_and_still_collects_new_cycles(restored_gc: None) -> None:
    tune_for_throughput()
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold()[0] == YOUNG_THRESHOLD

    class Node:
        other: object = None

    a, b = Node(), Node()
    a.other, b.other = b, a
    probe = id(a)
    del a, b
    gc.collect()
    assert all(id(o) != probe for o in gc.get_objects() if isinstance(o, Node))
