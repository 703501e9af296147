"""From validated settings to plugin instances and mappings, without opening any store.

Shared by ``sgw run`` and ``sgw check``: every problem (unknown type, bad options, unknown
mapping) is collected with its config path and raised together as one ConfigError.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from connectors.base import ConnectorContext
from gateway.errors import ConfigError
from gateway.registry import Registry, adapter_registry, connector_registry
from gateway.settings import ConnectorSettings, Settings
from mapping.catalog import load_catalog
from mapping.compiler import CompiledMapping

DEFAULT_VARIANT = "default"


@dataclass(frozen=True, slots=True)
class Assembly:
    catalog: Mapping[str, CompiledMapping]
    connectors: Mapping[str, Any]                       # connector id -> instance
    connector_mappings: Mapping[str, Mapping[str, CompiledMapping]]  # id -> variant -> mapping
    adapters: Mapping[str, Any]                         # adapter id -> instance


def _options_problems(error: ValidationError, path: str) -> list[str]:
    out = []
    for item in error.errors():
        loc = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in item["loc"])
        out.append(f"{path}{loc}: {item['msg']}")
    return out


def _instantiate(registry: Registry, type_name: str, options: dict[str, Any], path: str, problems: list[str],
                 *args: Any) -> Any:
    """A plugin built from its validated options; connectors also get their id and their context."""
    try:
        plugin = registry.get(type_name, path=f"{path}.type")
    except ConfigError as exc:
        problems.extend(exc.problems)
        return None
    try:
        config = plugin.config_model.model_validate(options)
    except ValidationError as exc:
        problems.extend(_options_problems(exc, f"{path}.options"))
        return None
    try:
        return plugin.factory(*args[:1], config, *args[1:])
    except ConfigError as exc:
        problems.extend(f"{path}.options: {p}" for p in exc.problems)
        return None


def _mapping(catalog: Mapping[str, CompiledMapping], name: str, path: str,
             problems: list[str]) -> CompiledMapping | None:
    found = catalog.get(name)
    if found is None:
        hint = difflib.get_close_matches(name, catalog, n=1)
        problems.append(f"{path}: unknown mapping {name!r}" + (f"; did you mean {hint[0]!r}?" if hint else ""))
    return found


ContextFactory = Callable[[str], ConnectorContext]


def connector_mappings_of(c: ConnectorSettings, catalog: Mapping[str, CompiledMapping], path: str,
                          problems: list[str]) -> dict[str, CompiledMapping]:
    """A connector's mappings by variant, from the catalog; what is missing goes to ``problems``."""
    variants: dict[str, CompiledMapping] = {}
    if c.mapping is None and not c.mappings:
        problems.append(f"{path}.mapping: a connector needs a mapping (or mappings per variant)")
    if c.mapping is not None and (m := _mapping(catalog, c.mapping, f"{path}.mapping", problems)):
        variants[DEFAULT_VARIANT] = m
    for variant, name in c.mappings.items():
        if m := _mapping(catalog, name, f"{path}.mappings.{variant}", problems):
            variants[variant] = m
    return variants


def assemble_connector(c: ConnectorSettings, catalog: Mapping[str, CompiledMapping], context: ConnectorContext,
                       path: str = "connector") -> tuple[Any, dict[str, CompiledMapping]]:
    """One connector and its mappings (the runtime's live changes); ConfigError lists every problem."""
    problems: list[str] = []
    instance = _instantiate(connector_registry(), c.type, c.options, path, problems, c.id, context)
    variants = connector_mappings_of(c, catalog, path, problems)
    if problems:
        raise ConfigError(problems)
    return instance, variants


def assemble(settings: Settings, context_for: ContextFactory | None = None, *,
             catalog: Mapping[str, CompiledMapping] | None = None) -> Assembly:
    """Build every enabled plugin; ``context_for`` gives each connector its durable state and lease
    (in-memory ones when omitted, as ``sgw check`` needs); ``catalog``: the mappings (default: the
    ones in ``mappings_dir``)."""
    context_for = context_for or (lambda _id: ConnectorContext())
    problems: list[str] = []
    catalog = dict(catalog) if catalog is not None else load_catalog(settings.mappings_dir)
    connectors: dict[str, Any] = {}
    connector_mappings: dict[str, dict[str, CompiledMapping]] = {}
    for i, c in enumerate(settings.connectors):
        if not c.enabled:
            continue
        path = f"connectors[{i}]"
        instance = _instantiate(connector_registry(), c.type, c.options, path, problems, c.id, context_for(c.id))
        variants = connector_mappings_of(c, catalog, path, problems)
        if instance is not None:
            connectors[c.id] = instance
        connector_mappings[c.id] = variants
    adapters: dict[str, Any] = {}
    for i, a in enumerate(settings.adapters):
        if a.enabled and (instance := _instantiate(adapter_registry(), a.type, a.options, f"adapters[{i}]",
                                                    problems)) is not None:
            adapters[a.id] = instance
    if problems:
        raise ConfigError(problems)
    return Assembly(catalog=catalog, connectors=connectors, connector_mappings=connector_mappings, adapters=adapters)
