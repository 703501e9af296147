"""Source paths: plain dotted paths compiled to direct lookups, and JMESPath expressions.

A plain path is ``A.B[0].C``: keys separated by dots, ``[n]`` indexes (negative allowed), and a key
that contains a dot, bracket or quote written in double quotes (``"金额[元]".x``). Lookups never
raise: a missing key, a wrong type or an index out of range gives ``None`` (absent). A dict where a
list index is applied counts as a list of one, because XML decodes one repeated element as a dict.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jmespath
from jmespath.exceptions import JMESPathError

Getter = Callable[[Any], Any]
Step = str | int

_INDEX = re.compile(r"\[(-?\d+)\]")
_KEY = re.compile(r'"((?:[^"\\]|\\.)+)"|([^.\[\]"]+)')


class PathSyntaxError(ValueError):
    """A path that does not parse; the message says where."""


@dataclass(frozen=True, slots=True)
class CompiledPath:
    text: str                 # canonical form, used as provenance
    steps: tuple[Step, ...]
    get: Getter


def parse_path(text: str) -> tuple[Step, ...]:
    """Split a plain path into keys (str) and indexes (int)."""
    if not text or text != text.strip():
        raise PathSyntaxError(f"path {text!r} is empty or has surrounding spaces")
    steps: list[Step] = []
    pos = 0
    while pos < len(text):
        if text[pos] == "[":
            m = _INDEX.match(text, pos)
            if m is None:
                raise PathSyntaxError(f"path {text!r}: bad index at position {pos}")
            steps.append(int(m.group(1)))
        else:
            if pos > 0:
                if text[pos] != ".":
                    raise PathSyntaxError(f"path {text!r}: expected '.' or '[' at position {pos}")
                pos += 1
            m = _KEY.match(text, pos)
            if m is None:
                raise PathSyntaxError(f"path {text!r}: expected a key at position {pos}")
            quoted, bare = m.group(1), m.group(2)
            steps.append(quoted.replace('\\"', '"') if quoted is not None else bare)
        pos = m.end()
    return tuple(steps)


def render_path(steps: tuple[Step, ...]) -> str:
    out: list[str] = []
    for step in steps:
        if isinstance(step, int):
            out.append(f"[{step}]")
            continue
        key = f'"{step}"' if any(c in step for c in '.[]"') else step
        out.append(f".{key}" if out else key)
    return "".join(out)


def compile_path(text: str) -> CompiledPath:
    """Compile a plain path; raises PathSyntaxError."""
    steps = parse_path(text)
    return CompiledPath(render_path(steps), steps, _getter(steps))


def compile_jmespath(expression: str) -> Getter:
    """Compile a JMESPath expression; raises PathSyntaxError."""
    try:
        parsed = jmespath.compile(expression)
    except JMESPathError as exc:
        raise PathSyntaxError(f"JMESPath {expression!r} does not parse: {exc}") from exc
    if parsed.parsed == _TO_STRING_OF_CURRENT:
        return _to_string

    def search(value: Any) -> Any:
        return parsed.search(value)

    return search


# `to_string(@)`: the source record as compact JSON (a ``raw`` field), once per record. JMESPath
# walks its tree and builds a JSON encoder per call; this is its function with one encoder.
_TO_STRING_OF_CURRENT = {"type": "function_expression", "value": "to_string",
                         "children": [{"type": "current", "children": []}]}
_COMPACT_JSON = json.JSONEncoder(separators=(",", ":"), default=str)


def _c_compact_json() -> Callable[[Any, int], Any] | None:
    """``_COMPACT_JSON``'s C encoder, made once: ``encode`` builds one (and a float formatter and a
    circular-reference table) per call, half its cost. Without the table: a decoded payload is a
    tree. None where the C accelerator is missing."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return None
    return make(None, str, json.encoder.encode_basestring_ascii, None, ":", ",", False, False, True)  # type: ignore[no-any-return]


_C_COMPACT_JSON = _c_compact_json()


def _to_string(value: Any) -> Any:
    if isinstance(value, str):
        return value
    if _C_COMPACT_JSON is not None:
        return "".join(_C_COMPACT_JSON(value, 0))
    return _COMPACT_JSON.encode(value)


def _key(key: str) -> Getter:
    def get(value: Any) -> Any:
        return value.get(key) if type(value) is dict else None

    return get


def _key2(k1: str, k2: str) -> Getter:
    def get(value: Any) -> Any:
        if type(value) is dict:
            value = value.get(k1)
            if type(value) is dict:
                return value.get(k2)
        return None

    return get


def _index(index: int) -> Getter:
    def get(value: Any) -> Any:
        if type(value) is list:
            try:
                return value[index]
            except IndexError:
                return None
        if type(value) is dict and index in (0, -1):
            return value
        return None

    return get


def _getter(steps: tuple[Step, ...]) -> Getter:
    if len(steps) == 1 and isinstance(steps[0], str):
        return _key(steps[0])
    if len(steps) == 2 and isinstance(steps[0], str) and isinstance(steps[1], str):
        return _key2(steps[0], steps[1])
    parts = tuple(_index(s) if isinstance(s, int) else _key(s) for s in steps)

    def get(value: Any) -> Any:
        for part in parts:
            value = part(value)
            if value is None:
                return None
        return value

    return get


def as_list(value: Any) -> list[Any]:
    """Where a list is expected: a dict (XML, one element) is a list of one; absent is empty."""
    if value is None:
        return []
    if type(value) is list:
        return value
    if type(value) is str and not value.strip():
        return []
    return [value]
