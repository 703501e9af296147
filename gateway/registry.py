"""Plugin registry: connector and adapter types by name.

Built-in plugins sit in a lazy ``name -> "module:attr"`` table; third-party ones come from the
entry-point groups ``sgw.connectors`` and ``sgw.adapters``. Config names a registered type, never
an import path; an unknown type fails at start with a "did you mean" hint. Nothing is imported
until a type is asked for, so protocol libraries load only with their plugin.
"""

from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

from gateway.errors import ConfigError

BUILTIN_CONNECTORS: dict[str, str] = {
    "hotline12345": "connectors.hotline12345:Hotline12345Connector",
    "batch_files": "connectors.batch_files:BatchFilesConnector",
    "http_push": "connectors.http_push:HttpPushConnector",
    "rest_poll": "connectors.rest_poll:RestPollConnector",
    "mqtt": "connectors.mqtt.connector:MqttConnector",
    "sample_replay": "connectors.sample_replay:SampleReplayConnector",
    "soap_poll": "connectors.soap.poll:SoapPollConnector",
}

BUILTIN_ADAPTERS: dict[str, str] = {
    "credit_exchange": "adapters.credit_exchange.adapter:CreditExchangeAdapter",
    "data_centre": "adapters.data_centre.adapter:DataCentreAdapter",
    "hotline12345_feedback": "adapters.hotline12345_feedback:Hotline12345FeedbackAdapter",
    "http_post": "adapters.http_sink.adapter:HttpPostAdapter",
    "national_platform": "adapters.national_platform.adapter:NationalPlatformAdapter",
}


@dataclass(frozen=True, slots=True)
class PluginType:
    """A registered plugin: its class and the class's ``Config`` model (the plugin's options)."""

    name: str
    factory: Any
    config_model: Any


class Registry:
    def __init__(self, group: str, builtins: dict[str, str]) -> None:
        self._group = group
        self._table = dict(builtins)
        for ep in entry_points(group=group):
            self._table.setdefault(ep.name, ep.value)

    def names(self) -> list[str]:
        return sorted(self._table)

    def get(self, name: str, *, path: str = "type") -> PluginType:
        target = self._table.get(name)
        if target is None:
            hint = difflib.get_close_matches(name, self._table, n=1)
            suffix = f"; did you mean {hint[0]!r}?" if hint else f"; known: {', '.join(self.names())}"
            raise ConfigError(f"{path}: unknown {self._group} type {name!r}{suffix}")
        module_name, _, attr = target.partition(":")
        factory = getattr(importlib.import_module(module_name), attr)
        return PluginType(name=name, factory=factory, config_model=factory.Config)


def connector_registry() -> Registry:
    return Registry("sgw.connectors", BUILTIN_CONNECTORS)


def adapter_registry() -> Registry:
    return Registry("sgw.adapters", BUILTIN_ADAPTERS)
