"""The adapter plugin interface: a batch of standard records to one target system.

An adapter is a name, a pydantic ``Config`` and a class implementing ``Adapter``; it gets what it
needs through its constructor and holds no reference to the runtime. It reports one
``DeliveryResult`` per record, in any order:

- ``delivered``: the target has it (a re-delivered record the target already holds is delivered);
- ``rejected``: the target says the data is wrong -> the providing department's rejections;
- ``retry``: transient (timeout, 5xx, 429; ``retry_after_s`` when the target said so);
- ``failed``: permanent delivery failure (misconfiguration, refused request) -> dead letters.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

DeliveryStatus = Literal["delivered", "rejected", "retry", "failed"]


@dataclass(frozen=True, slots=True)
class OutboundRecord:
    record_id: str
    kind: str
    record: Mapping[str, Any]
    department: str | None = None


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    record_id: str
    status: DeliveryStatus
    code: str | None = None
    message: str | None = None
    receipt: Mapping[str, Any] | None = None
    retry_after_s: float | None = None


@runtime_checkable
class Adapter(Protocol):
    name: str

    async def deliver(self, batch: Sequence[OutboundRecord]) -> list[DeliveryResult]: ...

    async def close(self) -> None: ...
