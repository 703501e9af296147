"""Reading a mapping YAML file with line numbers, so every problem reads ``file:line: path: message``.

The YAML schema is strict on purpose: only ``true``/``false`` are booleans, only numbers without
leading zeros are numbers (``01`` and ``001`` stay codes, ``10:30`` stays text) and dates stay
text, because mappings are full of codes and dates that YAML 1.1 would silently convert.
Duplicate keys are refused instead of silently overwritten.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from gateway.errors import ConfigError
from mapping.spec import Loc, MappingSpec


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2-like scalars (see the module docstring)."""


_StrictLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if not tag.endswith((":bool", ":int", ":float", ":timestamp"))]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
_StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:int", re.compile(r"^[-+]?(?:0|[1-9][0-9]*)$"), list("-+0123456789"))
_StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:0|[1-9][0-9]*)\.[0-9]+(?:[eE][-+]?[0-9]+)?$"), list("-+0123456789"))


def render_loc(loc: Loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


@dataclass(slots=True)
class SourceMap:
    """Line numbers of a YAML document's keys and items, by location."""

    path: Path
    lines: dict[Loc, int] = field(default_factory=dict)

    def line(self, loc: Loc) -> int:
        for end in range(len(loc), 0, -1):
            found = self.lines.get(loc[:end])
            if found is not None:
                return found
        return 1

    def format(self, loc: Loc, message: str) -> str:
        where = render_loc(loc)
        return f"{self.path}:{self.line(loc)}: {where + ': ' if where else ''}{message}"


def _index(node: yaml.Node, loc: Loc, source_map: SourceMap, problems: list[str]) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            here = (*loc, key)
            if key in seen:
                problems.append(f"{source_map.path}:{key_node.start_mark.line + 1}: {render_loc(here)}: "
                                "duplicate key")
            seen.add(key)
            source_map.lines.setdefault(here, key_node.start_mark.line + 1)
            _index(value_node, here, source_map, problems)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            source_map.lines[(*loc, i)] = item.start_mark.line + 1
            _index(item, (*loc, i), source_map, problems)


def read_yaml(path: Path) -> tuple[Any, SourceMap]:
    """Parse a YAML file into data and its source map; raises ConfigError."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from exc
    return parse_yaml(text, path)


def parse_yaml(text: str, path: Path) -> tuple[Any, SourceMap]:
    """Parse YAML text (``path`` names it in messages, e.g. a mapping version from the registry)."""
    loader = _StrictLoader(text)
    source_map = SourceMap(path)
    try:
        node = loader.get_single_node()
        if node is None:
            raise ConfigError(f"{path}:1: the file is empty")
        problems: list[str] = []
        _index(node, (), source_map, problems)
        if problems:
            raise ConfigError(problems)
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else 1
        raise ConfigError(f"{path}:{line}: YAML: {exc.problem or exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: YAML: {exc}") from exc
    finally:
        loader.dispose()
    return data, source_map


_NOTHING = object()


def _child(node: Any, part: str | int) -> Any:
    if isinstance(node, dict):
        return node.get(part, _NOTHING)
    if isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
        return node[part]
    return _NOTHING


def _data_loc(raw: tuple[str | int, ...], data: Any, error_type: str) -> Loc:
    """Pydantic's location reduced to the keys that exist in the document (drops union tags)."""
    loc: list[str | int] = []
    node = data
    for part in raw:
        child = _child(node, part)
        if child is _NOTHING:
            if error_type == "missing" and part == raw[-1]:
                loc.append(part)
            continue
        node = child
        loc.append(part)
    return tuple(loc)


def _message(error: Any) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required key is missing"
    raw_loc = tuple(error["loc"])
    if kind == "model_type":
        in_fields = "fields" in raw_loc or "key" in raw_loc
        return "expected a mapping" + (" such as {path: X} or {const: V}" if in_fields else "")
    message = str(error["msg"]).removeprefix("Value error, ")
    in_union = bool(raw_loc) and raw_loc[-1] == "str"
    if kind == "string_type" and not in_union and isinstance(error.get("input"), int | float):
        message += " (quote it: YAML reads it as a number)"
    return message


def validation_problems(exc: ValidationError, data: Any, source_map: SourceMap) -> list[str]:
    merged: dict[Loc, list[str]] = {}
    for error in exc.errors():
        loc = _data_loc(tuple(error["loc"]), data, error["type"])
        messages = merged.setdefault(loc, [])
        message = _message(error)
        if message not in messages:
            messages.append(message)
    return [source_map.format(loc, "; or ".join(msgs)) for loc, msgs in merged.items()]


def read_spec(path: Path) -> tuple[MappingSpec, SourceMap]:
    """Read and shape-check a mapping file; raises ConfigError listing every problem."""
    return spec_from_yaml(*read_yaml(path))


def spec_from_yaml(data: Any, source_map: SourceMap) -> tuple[MappingSpec, SourceMap]:
    """Shape-check parsed mapping YAML; raises ConfigError listing every problem."""
    path = source_map.path
    if not isinstance(data, dict):
        raise ConfigError(f"{path}:1: a mapping file is a YAML mapping (name, version, kind, fields...)")
    try:
        return MappingSpec.model_validate(data), source_map
    except ValidationError as exc:
        raise ConfigError(validation_problems(exc, data, source_map)) from exc
