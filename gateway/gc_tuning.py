"""Garbage-collector settings for a long-running gateway process.

The hot path allocates many short-lived containers per record (decoded payloads, rows, results)
that reference counting frees; the cyclic collector, run every 700 allocations by default, then
mostly re-scans the long-lived objects of start-up (compiled mappings, code tables, modules). We
freeze what exists once the gateway is up (moved out of the collector's view for good) and let the
youngest generation grow larger before a collection. Called by ``sgw run`` and the benchmarks, not
on import and not by ``Runtime`` itself (tests build many runtimes in one process).
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 50_000


def tune_for_throughput() -> None:
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, older, oldest)
