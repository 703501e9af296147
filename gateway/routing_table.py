"""Which adapters route a record kind: the routing of the settings, swappable while the gateway runs."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from gateway.settings import RouteSettings


def route_problems(routes: Sequence[RouteSettings], adapters: Iterable[str]) -> list[str]:
    known = set(adapters)
    return [f"routing[{i}].adapters[{j}]: unknown adapter {adapter!r}"
            for i, route in enumerate(routes) for j, adapter in enumerate(route.adapters) if adapter not in known]


class RoutingTable:
    """``adapters_for(kind)``: the enabled adapters routing ``kind``, in configuration order (cached
    per kind: ingest asks for every record); ``replace`` swaps the routes at once."""

    def __init__(self, routes: Sequence[RouteSettings], enabled_adapters: Iterable[str]) -> None:
        self._enabled = frozenset(enabled_adapters)
        self.routes: tuple[RouteSettings, ...] = tuple(routes)
        self._cache: dict[str, tuple[str, ...]] = {}

    def replace(self, routes: Sequence[RouteSettings]) -> None:
        self.routes = tuple(routes)
        self._cache = {}

    def adapters_for(self, kind: str) -> tuple[str, ...]:
        found = self._cache.get(kind)
        if found is None:
            out: list[str] = []
            for route in self.routes:
                if "*" in route.kinds or kind in route.kinds:
                    out.extend(a for a in route.adapters if a in self._enabled and a not in out)
            found = self._cache[kind] = tuple(out)
        return found
