"""Mapping versions from the registry: YAML text compiled and its golden examples checked.

A stored version is compiled as if it were the file ``<mappings_dir>/<name>.yaml`` (reference
tables and example payload files are found beside it), while problems name it
``<name>@v<n>.yaml:line: fields.X: message`` so the author finds the line in what they sent.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import partial
from pathlib import Path

import yaml

from connectors.codecs import decode
from gateway.errors import ConfigError
from gateway.ingest import Ingestor
from gateway.stores.registry import MappingVersion
from mapping.compiler import CompiledMapping, compile_mapping
from mapping.examples import run_examples
from mapping.loader import parse_yaml, spec_from_yaml


def display_name(name: str, version: int | None) -> str:
    return f"{name}@v{version}.yaml" if version is not None else f"{name}.yaml"


def compile_text(text: str, folder: Path, *, display: str, expected_name: str | None = None) -> CompiledMapping:
    """Parse, shape-check and compile a mapping's YAML; ConfigError lists every problem with its line."""
    from mapping.standard import load_standard

    try:
        data, source_map = parse_yaml(text, Path(display))
    except yaml.YAMLError as exc:  # the reader refuses some characters before parsing starts
        raise ConfigError(f"{display}:1: YAML: {exc}") from exc
    spec, source_map = spec_from_yaml(data, source_map)
    if expected_name is not None and spec.name != expected_name:
        raise ConfigError(source_map.format(("name",), f"the mapping is named {spec.name!r}, "
                                                       f"not {expected_name!r} as the address says"))
    try:
        standard = load_standard(spec.standard_version)
    except ConfigError as exc:
        raise ConfigError(source_map.format(("standard_version",), "; ".join(exc.problems))) from exc
    return compile_mapping(spec, path=folder / f"{spec.name}.yaml", standard=standard, source_map=source_map)


def example_problems(mapping: CompiledMapping, ingestor: Ingestor) -> list[str]:
    """Every golden example that does not hold, as ``file:line: examples[i]: message``."""
    failures = run_examples(mapping, partial(ingestor.check_mapped, mapping), decode=decode)
    index = {example.name: i for i, example in enumerate(mapping.examples)}
    out: list[str] = []
    for failure in failures:
        i = index.get(failure.example, 0)
        where = mapping.source_map.format(("examples", i), f"example {failure.example!r}: {failure.message}") \
            if mapping.source_map else f"examples[{i}]: {failure.message}"
        out.append(where)
    return out


def checked_mapping(text: str, folder: Path, ingestor: Ingestor, *, name: str, version: int | None) -> CompiledMapping:
    """A mapping version fit to be current: it compiles and every golden example holds."""
    mapping = compile_text(text, folder, display=display_name(name, version), expected_name=name)
    problems = example_problems(mapping, ingestor)
    if problems:
        raise ConfigError(problems)
    return mapping


def catalog_from(versions: Iterable[MappingVersion], folder: Path,
                 known: Mapping[str, tuple[str, CompiledMapping]]) -> tuple[dict[str, CompiledMapping], list[str]]:
    """The current versions compiled (``known``: name -> (text, compiled) to reuse when the text is the
    same); a version that does not compile is left out and its problems returned."""
    catalog: dict[str, CompiledMapping] = {}
    problems: list[str] = []
    for version in versions:
        reused = known.get(version.name)
        if reused is not None and reused[0] == version.spec:
            catalog[version.name] = reused[1]
            continue
        try:
            catalog[version.name] = compile_text(version.spec, folder,
                                                 display=display_name(version.name, version.version))
        except ConfigError as exc:
            problems.extend(exc.problems)
    return catalog, problems


def file_texts(folder: Path, catalog: Mapping[str, CompiledMapping]) -> dict[str, str]:
    """The text of each mapping file of the catalog (what seeds the registry)."""
    return {name: mapping.spec_path.read_text(encoding="utf-8") for name, mapping in catalog.items()}
