"""Every mapping of a folder, loaded and compiled: ``name -> CompiledMapping``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from gateway.errors import ConfigError
from mapping.compiler import CompiledMapping, load_mapping

if TYPE_CHECKING:
    from mapping.standard import Standard


def load_catalog(folder: Path, *, standard: Standard | None = None) -> dict[str, CompiledMapping]:
    """Load every ``*.yaml`` under ``folder`` (recursively); raises ConfigError listing every problem
    of every file, including two files that declare the same mapping name."""
    if not folder.is_dir():
        raise ConfigError(f"{folder}: mapping folder does not exist")
    catalog: dict[str, CompiledMapping] = {}
    problems: list[str] = []
    for path in sorted(folder.rglob("*.yaml")):
        try:
            mapping = load_mapping(path, standard=standard)
        except ConfigError as exc:
            problems.extend(exc.problems)
            continue
        other = catalog.get(mapping.name)
        if other is not None:
            line = mapping.source_map.line(("name",)) if mapping.source_map else 1
            problems.append(f"{path}:{line}: name: duplicate mapping name {mapping.name!r} "
                            f"(also in {other.spec_path})")
            continue
        catalog[mapping.name] = mapping
    if problems:
        raise ConfigError(problems)
    return catalog
