"""Mapping and record-level validation in worker processes: ``MapPool``.

Mapping a payload and checking each record on its own (``Ingestor.prepare``) needs nothing but
the payload, the mapping and the standard, and it is most of what ingest spends under the GIL.
For envelopes of many records (the chunks of a batch file, a page of a ministry system) the
publisher hands that part to a pool of worker processes, so that it runs beside the rest of
ingest (history rules, duplicates, the store write) instead of in turn with it, on another core.

A worker compiles each mapping it is given once (from the spec the gateway compiled, sent with
every task, so a mapping changed through the registry is compiled again under its new token)
and keeps a few. The pool only speeds ingest up: ``prepare`` returns None when a worker could
not answer (it died, or the payload raised), and the caller prepares in process, where a bad
payload raises its own error as it always did. A dead worker's pool is replaced.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import multiprocessing
import os
import pickle
import threading
import time
import weakref
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from datetime import date
from pathlib import Path
from typing import Any

from gateway.errors import MappingError
from gateway.ingest import Ingestor, Prepared
from mapping.compiler import CompiledMapping, MappedRecord
from mapping.findings import Finding

log = logging.getLogger(__name__)
WORKER_MAPPINGS = 32  # compiled mappings a worker keeps
PARENT_CHECK_S = 0.5  # how often a worker looks whether the gateway that started it is still there
# What a worker sends back per record, as a tuple: dataclasses cost ~10 µs a record to unpickle, a
# tuple of builtins 2.5. (record, key, findings, broken, mapping findings, provenance or None when
# it is the mapping's own.) One per source record, in their order: where each sits, and the
# record itself, the gateway has already (``sources_worth_sending``).
_Wire = tuple[dict[str, Any], tuple[str, ...], list[Finding], frozenset[str] | None, list[Finding],
              Mapping[str, str] | None]


class MapPool:
    def __init__(self, processes: int, *, uscc_exceptions: frozenset[str] = frozenset(),
                 min_records: int = 50) -> None:
        if processes < 1:
            raise ValueError("a map pool needs at least one process")
        self.processes = processes
        self.min_records = min_records
        self._uscc_exceptions = uscc_exceptions
        self._executor: ProcessPoolExecutor | None = None
        self._specs: weakref.WeakKeyDictionary[CompiledMapping, tuple[str, bytes]] = weakref.WeakKeyDictionary()
        self.prepared = 0      # envelopes a worker prepared
        self.left_to_caller = 0  # envelopes a worker could not prepare (mapped in process)

    def sources_worth_sending(self, mapping: CompiledMapping, payload: Any,
                              records_inline: bool) -> list[tuple[Any, str]] | None:
        """The payload's source records (``CompiledMapping.sources``) when there are at least
        ``min_records`` of them, else None: a trip to a worker costs about a millisecond."""
        if records_inline and type(payload) is not list:
            return None  # one record
        try:
            sources = mapping.sources(payload, records_inline)
        except MappingError:
            return None  # raised again where it is mapped, in process
        return sources if len(sources) >= self.min_records else None

    async def start(self) -> None:
        """Start the workers and wait until each has imported what it needs (a second or so)."""
        executor = self._pool()
        loop = asyncio.get_running_loop()
        await asyncio.gather(*(loop.run_in_executor(executor, _ready) for _ in range(self.processes)))

    def pids(self) -> list[int]:
        """The workers' process ids (for ops and benchmarks)."""
        processes = getattr(self._executor, "_processes", None) or {}
        return sorted(processes)

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    async def prepare(self, ingestor: Ingestor, mapping: CompiledMapping, payload: Any, meta: Mapping[str, Any], *,
                      records_inline: bool, sources: list[tuple[Any, str]]) -> list[Prepared] | None:
        """``ingestor.prepare(mapping, payload, meta, records_inline=...)`` in a worker (``sources``:
        the payload's, from ``sources_worth_sending``); None when the worker could not answer (then
        prepare in process)."""
        token, spec = self._spec_of(mapping)
        executor = self._pool()
        try:
            wire: list[_Wire] = await asyncio.get_running_loop().run_in_executor(
                executor, _prepare, token, spec, payload, records_inline, dict(meta), ingestor.today())
        except BrokenProcessPool:
            log.warning("a map worker died; its pool is replaced and the envelope mapped in process")
            self._replace(executor)
            self.left_to_caller += 1
            return None
        except Exception as exc:  # noqa: BLE001  # the payload's own error is raised again in process
            log.warning("a map worker could not prepare an envelope (%s); mapped in process", type(exc).__name__)
            self.left_to_caller += 1
            return None
        self.prepared += 1
        provenance = mapping.provenance  # read only: shared by the records that kept it
        return [Prepared(MappedRecord(record, own or provenance, mapping_findings, where, index, source),
                         key, findings, broken)
                for index, ((record, key, findings, broken, mapping_findings, own), (source, where))
                in enumerate(zip(wire, sources, strict=True))]

    def _pool(self) -> ProcessPoolExecutor:
        if self._executor is None:
            # spawn, not fork: the gateway has threads (a forked child may inherit a held lock).
            self._executor = ProcessPoolExecutor(self.processes, mp_context=multiprocessing.get_context("spawn"),
                                                 initializer=_init_worker, initargs=(self._uscc_exceptions,))
        return self._executor

    def _replace(self, broken: ProcessPoolExecutor) -> None:
        if self._executor is broken:
            self._executor = None
            broken.shutdown(wait=False, cancel_futures=True)

    def _spec_of(self, mapping: CompiledMapping) -> tuple[str, bytes]:
        found = self._specs.get(mapping)
        if found is None:
            blob = pickle.dumps((mapping.spec, str(mapping.spec_path)), protocol=pickle.HIGHEST_PROTOCOL)
            found = self._specs[mapping] = (hashlib.sha256(blob).hexdigest(), blob)
        return found


# -- in the worker process ------------------------------------------------------------------------

_INGESTOR: Ingestor | None = None
_MAPPINGS: dict[str, CompiledMapping] = {}
_TODAY: list[date | None] = [None]


def _init_worker(uscc_exceptions: frozenset[str]) -> None:
    global _INGESTOR  # one per worker process, set once when it starts
    _INGESTOR = Ingestor(uscc_exceptions=uscc_exceptions, today_fn=lambda: _TODAY[0])
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), name="parent watch", daemon=True).start()


def _exit_with_parent(parent: int) -> None:
    """A gateway killed outright (SIGKILL, OOM) cannot shut its pool down, and the workers would
    wait on their call queue for ever: each holds the queue's write end too, so it never closes."""
    while os.getppid() == parent:
        time.sleep(PARENT_CHECK_S)
    os._exit(0)  # nothing of the worker's is worth keeping: its tasks were the gateway's


def _ready() -> bool:
    import mapping.rules  # noqa: F401  # imported now rather than by the first envelope

    return True


def _prepare(token: str, spec: bytes, payload: Any, records_inline: bool, meta: dict[str, Any],
             today: date | None) -> list[_Wire]:
    if _INGESTOR is None:
        raise RuntimeError("map worker not initialised")
    mapping = _MAPPINGS.get(token)
    if mapping is None:
        mapping = _compile(spec)
        if len(_MAPPINGS) >= WORKER_MAPPINGS:
            _MAPPINGS.pop(next(iter(_MAPPINGS)))
        _MAPPINGS[token] = mapping
    _TODAY[0] = today
    provenance = mapping.provenance
    # Nor where each sits, nor the source records: the gateway has them.
    return [(m.record, p.key, p.findings, p.broken, m.findings, None if m.provenance == provenance else m.provenance)
            for p in _INGESTOR.prepare(mapping, payload, meta, records_inline=records_inline) for m in (p.mapped,)]


def _compile(blob: bytes) -> CompiledMapping:
    from mapping.compiler import compile_mapping
    from mapping.standard import load_standard

    spec, path = pickle.loads(blob)  # noqa: S301  # from the gateway process that started this worker
    return compile_mapping(spec, path=Path(path), standard=load_standard(spec.standard_version))
