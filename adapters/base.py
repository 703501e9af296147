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

from gateway.errors import GatewayError, TargetRejected, TargetUnavailable

DeliveryStatus = Literal["delivered", "rejected", "retry", "failed"]


class JsonRecord(dict[str, Any]):
    """A record parsed from compact JSON that keeps those bytes (``json``): an adapter that sends
    records as JSON may send them as they are instead of encoding the record again (the outbox
    stores records as orjson wrote them). Any change to the record forgets them."""

    __slots__ = ("json",)

    def __init__(self, fields: Mapping[str, Any] | None = None, json: bytes | None = None) -> None:
        super().__init__(fields or {})
        self.json = json

    def __setitem__(self, key: str, value: Any) -> None:
        self.json = None
        super().__setitem__(key, value)

    def __delitem__(self, key: str) -> None:
        self.json = None
        super().__delitem__(key)

    def __ior__(self, other: Any) -> JsonRecord:  # type: ignore[override,misc]
        self.json = None
        return super().__ior__(other)

    def clear(self) -> None:
        self.json = None
        super().clear()

    def pop(self, *args: Any) -> Any:
        self.json = None
        return super().pop(*args)

    def popitem(self) -> tuple[str, Any]:
        self.json = None
        return super().popitem()

    def setdefault(self, key: str, default: Any = None) -> Any:
        self.json = None
        return super().setdefault(key, default)

    def update(self, *args: Any, **kwargs: Any) -> None:
        self.json = None
        super().update(*args, **kwargs)


@dataclass(frozen=True, slots=True)
class OutboundRecord:
    record_id: str
    kind: str
    record: Mapping[str, Any]
    department: str | None = None
    attempts: int = 1  # 1 on the first attempt; more when retried or reclaimed from a crashed worker


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    record_id: str
    status: DeliveryStatus
    code: str | None = None
    message: str | None = None
    receipt: Mapping[str, Any] | None = None
    retry_after_s: float | None = None

    @classmethod
    def of_stopped_batch(cls, record_id: str, exc: GatewayError) -> DeliveryResult:
        """The result of a record whose (sub-)batch was stopped by a target-wide error: a retry when
        the target is unavailable, a failure otherwise (with the target's code when it refused)."""
        if isinstance(exc, TargetUnavailable):
            return cls(record_id, "retry", code="TARGET_UNAVAILABLE", message=str(exc),
                       retry_after_s=exc.retry_after_s)
        code = exc.code if isinstance(exc, TargetRejected) else None
        return cls(record_id, "failed", code=code, message=str(exc))


@runtime_checkable
class Adapter(Protocol):
    name: str

    async def deliver(self, batch: Sequence[OutboundRecord]) -> list[DeliveryResult]: ...

    async def close(self) -> None: ...
