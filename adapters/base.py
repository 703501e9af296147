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

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple, Protocol, runtime_checkable

import orjson

from gateway.errors import GatewayError, TargetRejected, TargetUnavailable

DeliveryStatus = Literal["delivered", "rejected", "retry", "failed"]


class JsonRecord(dict[str, Any]):
    """A record parsed from compact JSON that keeps those bytes (``json``): an adapter that sends
    records as JSON may send them as they are instead of encoding the record again (the outbox
    stores records as orjson wrote them). Any change to the record forgets them. ``unread`` makes
    one whose fields are parsed only when something looks at them (``may_have`` does not)."""

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

    def may_have(self, key: str) -> bool:
        """Whether the record may have ``key`` (a plain ASCII name); False is certain."""
        return key in self

    @staticmethod
    def unread(json: bytes) -> JsonRecord:
        """A record of these JSON bytes (an object) whose fields are read at the first look at them.
        A record that travels on as its bytes (to the national platform) is then never parsed: a
        claimed batch's parse cost more than a third of claiming it from Redis."""
        record = dict.__new__(_UnreadJsonRecord)  # empty, without JsonRecord.__init__'s copy
        record.json = json
        dict.__setitem__(record, _UNREAD_KEY, _NOT_READ)
        return record


class _NotRead:
    """What an unread record's dict holds until it is read. Code that reads a dict's storage without
    calling a method (orjson, json's C encoder) meets this instead of an empty record, and fails."""

    def _refuse(self) -> str:
        raise TypeError("a JsonRecord read without its methods before its fields were read")

    __str__ = __repr__ = _refuse


_UNREAD_KEY = "\x00unread"
_NOT_READ = _NotRead()


class _UnreadJsonRecord(JsonRecord):
    """A ``JsonRecord`` whose fields are not read yet: every method of dict reads them from ``json``
    first, then the object becomes a plain ``JsonRecord`` (the same layout, so its class may change)
    and every later access runs at dict speed."""

    __slots__ = ()

    def may_have(self, key: str) -> bool:
        """Told by the bytes, not read: orjson writes a key as ``"key":`` (a string value holding
        that text would be escaped), so its absence there is certain."""
        return self.json is None or f'"{key}":'.encode() in self.json

    def read(self) -> None:
        """Fill the dict from ``json``; from now on a plain ``JsonRecord``."""
        if self.json is None:  # only ``json`` set by hand: the fields are lost
            raise TypeError("an unread JsonRecord without its JSON")
        dict.clear(self)
        dict.update(self, orjson.loads(self.json))
        self.__class__ = JsonRecord  # type: ignore[assignment]


def _reading_first(name: str) -> Callable[..., Any]:
    def method(self: JsonRecord, *args: Any, **kwargs: Any) -> Any:
        if isinstance(self, _UnreadJsonRecord):
            self.read()
        return getattr(self, name)(*args, **kwargs)

    method.__name__ = name
    return method


# Every method of dict that reads or changes the fields (JsonRecord's changers forget ``json``, so
# they run once the fields are read).
for _name in ("__contains__", "__eq__", "__getitem__", "__iter__", "__len__", "__ne__", "__or__", "__ror__",
              "__ior__", "__repr__", "__reversed__", "__sizeof__", "__reduce__", "__reduce_ex__", "__setitem__",
              "__delitem__", "clear", "copy", "get", "items", "keys", "pop", "popitem", "setdefault", "update",
              "values"):
    setattr(_UnreadJsonRecord, _name, _reading_first(_name))
del _name


@dataclass(frozen=True, slots=True)
class OutboundRecord:
    record_id: str
    kind: str
    record: Mapping[str, Any]
    department: str | None = None
    attempts: int = 1  # 1 on the first attempt; more when retried or reclaimed from a crashed worker


class DeliveryResult(NamedTuple):
    """A NamedTuple (``_replace`` makes a changed copy): one is made per record per delivery, and a
    tuple is made in a third of the time of a frozen dataclass, immutable all the same."""

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
