"""The import rules of DESIGN.md, checked on the source, and the origin of each top-level package."""

from __future__ import annotations

import ast
import importlib
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("connectors", "adapters", "mapping", "gateway", "monitoring")
GATEWAY_CORE = ("gateway.errors", "gateway.envelope")
# Shared, non-plugin modules of the plugin packages that the runtime may import directly.
PLUGIN_SHARED = ("connectors.base", "connectors.codecs", "connectors.file_meta", "adapters.base", "adapters.journal")
# Protocol libraries live only inside their own plugin (module prefixes allowed to import them).
PROTOCOL_LIBRARIES = {
    "zeep": ("connectors.soap",),
    "paho": ("connectors.mqtt",),
    "aiohttp": ("connectors.rest", "adapters."),
    "openpyxl": ("connectors.codecs.xlsx",),
    "defusedxml": ("connectors.codecs.",),
    "prometheus_client": ("monitoring.",),
    "sqlalchemy": ("gateway.", "adapters.data_centre"),
    "fastapi": ("gateway.api", "gateway.cli"),
    "uvicorn": ("gateway.cli",),
}


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> Iterator[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module_name(path).rsplit(".", 0 if path.name == "__init__.py" else 1)[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                yield ".".join([*base, node.module] if node.module else base)
            elif node.module:
                yield node.module


def modules() -> Iterator[tuple[str, str]]:
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            for imported in imports_of(path):
                yield module_name(path), imported


def within(name: str, prefixes: tuple[str, ...]) -> bool:
    """Module-name prefix match: "connectors.codecs.xlsx" covers "connectors.codecs.xlsx_codec"."""
    return name.startswith(prefixes)


def top(name: str) -> str:
    return name.split(".")[0]


def violation(importer: str, imported: str) -> str | None:
    layer, target = top(importer), top(imported)
    if target in PACKAGES and target != layer:
        if layer == "connectors" and not within(imported, GATEWAY_CORE):
            return "connectors may import only gateway core types"
        if layer == "mapping" and not within(imported, GATEWAY_CORE):
            return "mapping may import only gateway core types"
        if layer == "adapters" and not (within(imported, GATEWAY_CORE) or target == "mapping"):
            return "adapters may import only mapping and gateway core types"
        if layer == "monitoring":
            return "monitoring imports nothing of the core"
        if layer == "gateway" and target in ("connectors", "adapters") and not within(imported, PLUGIN_SHARED):
            return "the runtime reaches plugins only through the registry"
    for library, owners in PROTOCOL_LIBRARIES.items():
        if target == library and not within(importer, owners):
            return f"{library} may be imported only by {', '.join(owners)}"
    return None


def test_import_rules_of_the_design() -> None:
    problems = [f"{importer} imports {imported}: {why}"
                for importer, imported in modules()
                if (why := violation(importer, imported))]
    assert problems == []


@pytest.mark.parametrize(
    ("importer", "imported"),
    [("mapping.compiler", "gateway.runtime"), ("connectors.soap", "mapping.compiler"),
     ("monitoring.metrics", "gateway.errors"), ("gateway.runtime", "connectors.soap"),
     ("mapping.values", "sqlalchemy"), ("gateway.ingest", "zeep")],
)
def test_the_rules_catch_violations(importer: str, imported: str) -> None:
    assert violation(importer, imported) is not None


@pytest.mark.parametrize("package", PACKAGES)
def test_top_level_packages_come_from_this_repository(package: str) -> None:
    module = importlib.import_module(package)
    assert module.__file__ is not None
    assert Path(module.__file__).resolve().parent == ROOT / package
