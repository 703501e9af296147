"""Garbage-collector and allocator settings for a long-running gateway process.

The hot path allocates many short-lived containers per record (decoded payloads, rows, results)
that reference counting frees; the cyclic collector, run every 700 allocations by default, then
mostly re-scans the long-lived objects of start-up (compiled mappings, code tables, modules). We
freeze what exists once the gateway is up (moved out of the collector's view for good) and let the
youngest generation grow larger before a collection.

glibc gives every thread that allocates a malloc arena of its own (up to 8 per core): the worker
threads that write the stores, read files and deliver each keep the freed memory of their last
batch in theirs, and the process's peak grows with the number of threads (a batch file in chunks
of 2,000 rows: 334 MB, with two arenas 277 MB, at the same speed). Two arenas, as
``MALLOC_ARENA_MAX=2`` would set, unless the environment sets it already; elsewhere a no-op.

Called by ``sgw run`` and the benchmarks, not on import and not by ``Runtime`` itself (tests build
many runtimes in one process).
"""

from __future__ import annotations

import ctypes
import gc
import os

YOUNG_THRESHOLD = 50_000
M_ARENA_MAX = -8  # glibc's mallopt parameter number
MALLOC_ARENAS = 2


def tune_for_throughput() -> None:
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, older, oldest)
    limit_malloc_arenas()


def limit_malloc_arenas(arenas: int = MALLOC_ARENAS) -> bool:
    """Cap glibc's malloc arenas (for threads started from now on); False when the environment
    sets ``MALLOC_ARENA_MAX`` itself or the C library has no ``mallopt`` (musl, macOS)."""
    if os.environ.get("MALLOC_ARENA_MAX"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_ARENA_MAX, arenas))
