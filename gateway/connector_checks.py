"""Checks of a connector's settings before they are saved, each problem with its path
(``options.poll_interval_s``, ``mappings.hj212``): shared by the admin API and ``sgw connectors apply``."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Collection, Mapping
from typing import Any

from pydantic import ValidationError

from connectors.base import ConnectorContext
from gateway.errors import ConfigError
from gateway.registry import connector_registry
from gateway.settings import ConnectorSettings

Problem = dict[str, str]


def problem_of_line(line: str) -> Problem:
    """``"path: message"`` (as ConfigError lines read) as a problem."""
    path, sep, message = line.lstrip(".").partition(": ")
    return {"path": path, "message": message} if sep else {"path": "", "message": line}


def pydantic_problems(exc: ValidationError, prefix: str = "") -> list[Problem]:
    out = []
    for item in exc.errors():
        loc = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in item["loc"])
        out.append({"path": (prefix + loc).lstrip(".") or "(root)",
                    "message": str(item["msg"]).removeprefix("Value error, ")})
    return out


def settings_problems(body: Mapping[str, Any]) -> list[Problem]:
    try:
        ConnectorSettings.model_validate(body)
    except ValidationError as exc:
        return pydantic_problems(exc)
    return []


def plugin_problems(body: Mapping[str, Any]) -> list[Problem]:
    """The type is registered, its options validate, and the plugin accepts them when built (with
    in-memory state: nothing is opened)."""
    type_name, options = body.get("type"), body.get("options", {})
    if not isinstance(type_name, str) or not isinstance(options, dict):
        return []
    try:
        plugin = connector_registry().get(type_name, path="type")
    except ConfigError as exc:
        return [problem_of_line(p) for p in exc.problems]
    try:
        options_model = plugin.config_model.model_validate(options)
    except ValidationError as exc:
        return pydantic_problems(exc, "options")
    try:
        plugin.factory(str(body.get("id")), options_model, ConnectorContext())
    except ConfigError as exc:
        return [{"path": "options", "message": p} for p in exc.problems]
    return []


def mapping_problems(body: Mapping[str, Any], mappings: Collection[str]) -> list[Problem]:
    named: list[tuple[str, Any]] = [("mapping", body.get("mapping"))]
    variants = body.get("mappings")
    if isinstance(variants, dict):
        named.extend((f"mappings.{variant}", name) for variant, name in variants.items())
    problems = []
    for path, name in named:
        if isinstance(name, str) and name not in mappings:
            hint = difflib.get_close_matches(name, list(mappings), n=1)
            problems.append({"path": path, "message": f"unknown mapping {name!r}"
                             + (f"; did you mean {hint[0]!r}?" if hint else "")})
    if body.get("mapping") is None and not variants:
        problems.append({"path": "mapping", "message": "a connector needs a mapping (or mappings per variant)"})
    return problems


def department_problems(body: Mapping[str, Any], exists: Callable[[str], bool] | None) -> list[Problem]:
    """Blocking (``exists`` may read the department store)."""
    department = body.get("department")
    if isinstance(department, str) and exists is not None and not exists(department):
        return [{"path": "department", "message": f"unknown department {department!r}"}]
    return []


def connector_problems(body: Mapping[str, Any], mappings: Collection[str],
                       department_exists: Callable[[str], bool] | None) -> list[Problem]:
    """Every problem of one connector's settings (blocking)."""
    return (settings_problems(body) + plugin_problems(body) + mapping_problems(body, mappings)
            + department_problems(body, department_exists))
