"""`sgw run` moves its start-up objects out of the cyclic collector's view and collects the young
generation less often; cyclic garbage made afterwards is still collected. Its threads share two
malloc arenas (glibc's ``MALLOC_ARENA_MAX``)."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from gateway.gc_tuning import YOUNG_THRESHOLD, limit_malloc_arenas, tune_for_throughput
from tests.conftest import ROOT


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


ARENAS_SCRIPT = """
import ctypes, sys, threading
from gateway.gc_tuning import limit_malloc_arenas
limited = limit_malloc_arenas() if sys.argv[1] == "limit" else None
held = []
together = threading.Barrier(8)
def work():
    together.wait()  # all alive at once: an exited thread's arena would be handed to the next
    held.append([bytearray(4096) for _ in range(256)])  # malloc'd in this thread's arena
    together.wait()
threads = [threading.Thread(target=work) for _ in range(8)]
for t in threads:
    t.start()
for t in threads:
    t.join()
libc = ctypes.CDLL(None)
libc.open_memstream.restype = ctypes.c_void_p
buf, size = ctypes.c_char_p(), ctypes.c_size_t()
stream = ctypes.c_void_p(libc.open_memstream(ctypes.byref(buf), ctypes.byref(size)))
libc.malloc_info(0, stream)
libc.fclose(stream)
print(limited, ctypes.string_at(buf, size.value).decode().count("<heap nr="))
"""


@pytest.mark.parametrize("mode", ["limit", "default"])
def test_threads_share_two_malloc_arenas_once_limited(mode: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    out = subprocess.run([sys.executable, "-c", ARENAS_SCRIPT, mode], capture_output=True, text=True, env=env,
                         cwd=ROOT, check=True, timeout=30).stdout.split()
    if mode == "limit":
        assert out == ["True", "2"]
    else:  # glibc: a thread that allocates gets an arena of its own
        assert out[0] == "None" and int(out[1]) > 2


def test_the_environments_arena_setting_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert limit_malloc_arenas() is False
