"""The shape a target wants: a projection of the standard record, compiled once.

A projection maps each output field to where its value is in the standard record, with an optional
conversion; a list of objects (``factors``) can become one object keyed by an item field:

```yaml
device_id: device_id                                   # a path, value as is
observed_at: {path: observed_at, convert: utc}         # ISO 8601 in UTC, "Z"
seq: {path: ext.seq, convert: number}
metrics: {table: factors, key: code, value: value,     # [{code: a34004, value: "160.1"}, ...]
          names: {a34004: pm25}, others: drop,         #   -> {"pm25": 160.1}
          convert: number}
```

Paths are dotted keys into the record (``ext.seq``). An absent value leaves the output field out
(or null with ``keep_absent``). A value that cannot be converted is a ``ProjectionError``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field

Convert = Literal["as_is", "utc", "number", "text"]
SHANGHAI = ZoneInfo("Asia/Shanghai")
_PATH = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$"
_INTEGER = re.compile(r"[+-]?[0-9]+")
_ABSENT = object()


class ProjectionError(ValueError):
    """A record value that the projection cannot convert (the record fails, the batch goes on)."""


class FieldRule(BaseModel):
    """One value of the record, converted."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    path: str = Field(pattern=_PATH, description="Dotted path into the standard record, e.g. ext.seq")
    convert: Convert = "as_is"


class TableRule(BaseModel):
    """A list of objects in the record as one object: ``{item[key]: item[value]}``."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    table: str = Field(pattern=_PATH, description="Path of the list, e.g. factors")
    key: str = "code"
    value: str = "value"
    names: dict[str, str] = Field(default_factory=dict, description="Item key -> output key (renames).")
    others: Literal["keep", "drop"] = Field(default="keep", description="Items whose key is not in names.")
    convert: Convert = "as_is"


Rule = str | FieldRule | TableRule
Projector = Callable[[Mapping[str, Any]], dict[str, Any]]


def to_utc(value: Any) -> str:
    """A datetime (ISO 8601 text; naive means Asia/Shanghai, the standard's convention) in UTC."""
    if isinstance(value, datetime):
        moment = value
    else:
        text = str(value)
        if len(text) <= 10:  # a date has no instant
            raise ProjectionError(f"not a datetime: {text!r}")
        try:
            moment = datetime.fromisoformat(text)
        except ValueError as exc:
            raise ProjectionError(f"not an ISO 8601 datetime: {text!r}") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=SHANGHAI)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def to_number(value: Any) -> int | float:
    """Decimal text (the standard's form) as a JSON number: an int when integral text, else a float."""
    if isinstance(value, bool):
        raise ProjectionError(f"not a number: {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        number = value
    else:
        text = str(value).strip() if isinstance(value, str | Decimal) else None
        if text is None:
            raise ProjectionError(f"not a number: {type(value).__name__}")
        if _INTEGER.fullmatch(text):
            return int(text)
        try:
            number = float(text)
        except ValueError as exc:
            raise ProjectionError(f"not a number: {text!r}") from exc
    if not math.isfinite(number):
        raise ProjectionError(f"not a finite number: {value!r}")
    return number


def _to_text(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


_CONVERTERS: dict[Convert, Callable[[Any], Any] | None] = {
    "as_is": None, "utc": to_utc, "number": to_number, "text": _to_text,
}


def _getter(path: str) -> Callable[[Mapping[str, Any]], Any]:
    steps = path.split(".")
    if len(steps) == 1:
        key = steps[0]
        return lambda record: record.get(key, _ABSENT)

    def get(record: Mapping[str, Any]) -> Any:
        node: Any = record
        for step in steps:
            if not isinstance(node, Mapping):
                return _ABSENT
            node = node.get(step, _ABSENT)
            if node is _ABSENT:
                break
        return node

    return get


def _field(rule: FieldRule) -> Callable[[Mapping[str, Any]], Any]:
    get, convert = _getter(rule.path), _CONVERTERS[rule.convert]
    if convert is None:
        return get

    def value(record: Mapping[str, Any]) -> Any:
        found = get(record)
        return found if found is _ABSENT or found is None else convert(found)

    return value


def _table(rule: TableRule) -> Callable[[Mapping[str, Any]], Any]:
    get, convert = _getter(rule.table), _CONVERTERS[rule.convert]
    key, value, names, keep_others = rule.key, rule.value, rule.names, rule.others == "keep"

    def table(record: Mapping[str, Any]) -> Any:
        items = get(record)
        if items is _ABSENT or items is None:
            return _ABSENT
        if not isinstance(items, list):
            raise ProjectionError(f"{rule.table} is not a list")
        out: dict[str, Any] = {}
        for item in items:
            if not isinstance(item, Mapping) or (name := item.get(key)) is None:
                continue
            name = names.get(name) or (str(name) if keep_others else None)
            if name is None:
                continue
            found = item.get(value)
            out[name] = convert(found) if convert is not None and found is not None else found
        return out

    return table


def compile_projection(rules: Mapping[str, Rule] | None, *, keep_absent: bool = False) -> Projector:
    """The projection as one function; ``None`` rules: the record as it is (a shallow copy)."""
    if rules is None:
        return dict
    getters = [(name, _field(FieldRule(path=rule)) if isinstance(rule, str) else
                _field(rule) if isinstance(rule, FieldRule) else _table(rule)) for name, rule in rules.items()]

    def project(record: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, get in getters:
            found = get(record)
            if found is _ABSENT:
                if keep_absent:
                    out[name] = None
                continue
            out[name] = found
        return out

    return project
