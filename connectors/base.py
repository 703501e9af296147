"""The connector plugin interface.

A connector speaks one protocol and turns what arrives into an ``Envelope``; it does no mapping.
It is built as ``ConnectorType(connector_id, config, context)`` — its id, its validated
``Config`` and a ``ConnectorContext`` (durable state, poll lease) — gets a ``publish`` callable in
``run``, and holds no reference to the runtime. ``publish`` returns only after the envelope's
records are durably written (accepted to the outbox, rejected to the ledger); a connector
acknowledges its source only after that, and stops acknowledging when ``publish`` raises
``StoreUnavailable``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from pydantic import BaseModel

from gateway.envelope import Envelope


@dataclass(frozen=True, slots=True)
class ReceiptError:
    """One finding on a record, as a source may report it back (result files, webhook answers)."""

    code: str
    field: str | None
    location: str | None
    message_zh: str
    message_en: str
    severity: str = "error"


@dataclass(frozen=True, slots=True)
class RecordReceipt:
    """What happened to one record of the envelope (``index``: its position in the payload)."""

    index: int
    status: str  # accepted | rejected | duplicate
    record_id: str | None
    source_record_id: str | None
    errors: tuple[ReceiptError, ...] = ()
    warnings: tuple[ReceiptError, ...] = ()


@dataclass(frozen=True, slots=True)
class PublishReceipt:
    """What ingest did with one envelope: counts per outcome, and each record's outcome."""

    envelope_id: str
    accepted: int
    rejected: int
    duplicate: int
    records: tuple[RecordReceipt, ...] = ()


Publish = Callable[[Envelope], Awaitable[PublishReceipt]]


class Connector(Protocol):
    Config: ClassVar[type[BaseModel]]

    async def run(self, publish: Publish) -> None:
        """Take input until cancelled; publish each envelope and acknowledge only after it returns."""


class ConnectorState(Protocol):
    """Durable state of one connector: JSON values by key (poll cursors, windows, file checkpoints).

    Save a cursor only after ``publish`` returned for what was read before it.
    """

    async def load(self, key: str) -> Any: ...

    async def save(self, key: str, value: Any) -> None: ...

    async def clear(self, key: str) -> None: ...


class PollLease(Protocol):
    """Only one gateway instance polls a given connector at a time.

    Embedded, the lease is always held; with Redis, another instance takes it over when the holder
    stops renewing it. ``acquire`` and ``renew`` answer whether this instance holds it now.
    """

    async def acquire(self) -> bool: ...

    async def renew(self) -> bool: ...

    async def release(self) -> None: ...


class MemoryState:
    """State kept in memory: for dry runs, ``sgw check`` and unit tests."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    async def load(self, key: str) -> Any:
        return self.values.get(key)

    async def save(self, key: str, value: Any) -> None:
        self.values[key] = value

    async def clear(self, key: str) -> None:
        self.values.pop(key, None)


class HeldLease:
    """The embedded lease: one process, so it is always held."""

    async def acquire(self) -> bool:
        return True

    async def renew(self) -> bool:
        return True

    async def release(self) -> None:
        return None


class ConnectorTelemetry(Protocol):
    """What a connector reports about itself, for metrics and its live status.

    ``count`` adds to a named counter of this connector (``messages``, ``bad_signature``,
    ``packets_bad_crc``...; a small fixed set of names per connector type, never an id or a value
    from the payload). ``gauge`` sets a named level, optionally per bounded ``key`` (a region,
    not a device). ``state`` says what the connector is doing (``running``, ``connecting``,
    ``stopped: bad credentials``...); ``error`` records the last error it met, without PII.
    """

    def count(self, name: str, n: int = 1) -> None: ...

    def gauge(self, name: str, value: float, key: str | None = None) -> None: ...

    def state(self, state: str, detail: str | None = None) -> None: ...

    def error(self, message: str) -> None: ...


class NoTelemetry:
    def count(self, name: str, n: int = 1) -> None:
        return None

    def gauge(self, name: str, value: float, key: str | None = None) -> None:
        return None

    def state(self, state: str, detail: str | None = None) -> None:
        return None

    def error(self, message: str) -> None:
        return None


@dataclass(frozen=True, slots=True)
class ConnectorContext:
    """What the runtime gives a connector besides its config: durable state, its poll lease,
    where to report its counters and state, and the name of this gateway instance (stable across
    its restarts; empty when it runs alone), for what must differ between instances that share
    one connector's settings (an MQTT client id in a shared subscription)."""

    state: ConnectorState = field(default_factory=MemoryState)
    lease: PollLease = field(default_factory=HeldLease)
    telemetry: ConnectorTelemetry = field(default_factory=NoTelemetry)
    instance: str = ""
